import test from 'ava';
import { indexJsonObject, JSON_DEPTH_MAX, RepeatedKeyError } from '../src/json-index.ts';

const index = (text: string) => indexJsonObject(Buffer.from(text, 'utf8'));

// Accepted exactly when JSON.parse accepts (and the top level is an object without repeated keys).
const texts = [
  '{}',
  ' \n{ "a" : 1 } \t',
  '{"a":[1,-2.5e+3,0,0.0,1E-2,true,false,null,"x\\n\\u00e9\\"",{"b":[]}],"c":{}}',
  '{"é☃":"\\ud83d\\ude00"}',
  '{"a":01}',
  '{"a":1.}',
  '{"a":.5}',
  '{"a":-}',
  '{"a":+1}',
  '{"a":1e}',
  '{"a":tru}',
  '{"a":"\\x"}',
  '{"a":"\\u12g4"}',
  '{"a":"tab\there"}',
  '{"a":1,}',
  '{"a":[1,]}',
  '{"a" 1}',
  '{a:1}',
  "{'a':1}",
  '{"a":1}}',
  '{"a":1',
  '{"a":"x}',
  '{"a":[1 2]}',
  '{"a":1} x',
  '',
];
for (const text of texts) {
  test(`syntax as JSON.parse: ${JSON.stringify(text)}`, (t) => {
    let parsed = true;
    try {
      JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (parsed) t.notThrows(() => index(text));
    else t.throws(() => index(text), { instanceOf: SyntaxError });
  });
}

test('top-level keys in order, each value’s byte range', (t) => {
  const text = '{"q": {"dtype": "F32"}, "é": [1, 2], "__metadata__": {"k": "v"}}';
  const got = index(text);
  t.deepEqual([...got.keys.keys()], ['q', 'é', '__metadata__']);
  const bytes = Buffer.from(text);
  const value = (k: string) => {
    const [a, b] = got.range(k)!;
    return JSON.parse(bytes.toString('utf8', a, b));
  };
  t.deepEqual(value('q'), { dtype: 'F32' });
  t.deepEqual(value('é'), [1, 2]);
  t.is(got.range('nope'), undefined);
});

test('a repeated key is refused at the top level and in nested objects, however it is spelled', (t) => {
  t.like(
    t.throws(() => index('{"a":1,"b":2,"a":3}'), { instanceOf: RepeatedKeyError }),
    { key: 'a', topLevel: true },
  );
  t.like(
    t.throws(() => index('{"a":1,"\\u0061":3}'), { instanceOf: RepeatedKeyError }),
    { key: 'a', topLevel: true },
  );
  t.like(
    t.throws(() => index('{"t":{"dtype":"F32","dtype":"F16"}}'), { instanceOf: RepeatedKeyError }),
    { key: 'dtype', topLevel: false },
  );
  t.like(
    t.throws(() => index('{"t":{"shape":[],"sh\\u0061pe":[1]}}'), { instanceOf: RepeatedKeyError }),
    { key: 'shape' },
  );
  const many = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`);
  t.notThrows(() => index(`{"m":{${many.join(',')}}}`));
  t.like(
    t.throws(() => index(`{"m":{${many.join(',')},"k3":0}}`), { instanceOf: RepeatedKeyError }),
    { key: 'k3' },
  );
  t.notThrows(() => index('{"a":{"x":1},"b":{"x":1}}'), 'the same key in two objects is fine');
});

test('nesting deeper than JSON_DEPTH_MAX is refused; a top level that is not an object too', (t) => {
  const deep = (n: number) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`;
  t.notThrows(() => index(deep(JSON_DEPTH_MAX - 1)));
  t.throws(() => index(deep(JSON_DEPTH_MAX)), { message: /nesting deeper than 64/ });
  t.throws(() => index('[1,2]'), { message: /expected a JSON object/ });
});

test('invalid utf-8 is refused', (t) => {
  t.throws(() => indexJsonObject(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), { message: /utf-8/ });
});
