/**
 * A parser for the Python literals an .npy header holds:
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
 * Dicts, tuples, lists, quoted strings, integers (a Python 2 `L` suffix is accepted),
 * True/False/None. Tuples and lists become arrays. Dicts are null-prototype objects (a key such
 * as `'__proto__'` is an ordinary key, never a prototype), and a key given twice is refused
 * (Python would keep the last one silently). Throws SyntaxError on anything else.
 */
export type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

export function parsePyLiteral(text: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const expect = (ch: string): void => {
    skipSpace();
    if (text[i] !== ch) fail(`expected '${ch}'`);
    i++;
  };

  const parseString = (): string => {
    const quote = text[i]!;
    i++;
    let out = '';
    while (i < text.length && text[i] !== quote) {
      if (text[i] === '\\') {
        i++;
        const c = text[i];
        if (c === undefined) break;
        out += c === 'n' ? '\n' : c === 't' ? '\t' : c;
      } else {
        out += text[i];
      }
      i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    return out;
  };

  /** Items up to `close`; `sawComma` tells a 1-tuple `(5,)` from a parenthesised `(5)`. */
  const parseItems = (close: string): { items: PyValue[]; sawComma: boolean } => {
    const items: PyValue[] = [];
    let sawComma = false;
    for (;;) {
      skipSpace();
      if (text[i] === close) {
        i++;
        return { items, sawComma };
      }
      items.push(parseValue());
      skipSpace();
      if (text[i] === ',') {
        sawComma = true;
        i++;
      } else if (text[i] !== close) {
        fail(`expected ',' or '${close}'`);
      }
    }
  };

  const parseDict = (): { [key: string]: PyValue } => {
    i++;
    const dict: { [key: string]: PyValue } = Object.create(null);
    for (;;) {
      skipSpace();
      if (text[i] === '}') {
        i++;
        return dict;
      }
      if (text[i] !== "'" && text[i] !== '"') fail('expected a string key');
      const at = i;
      const key = parseString();
      if (Object.hasOwn(dict, key)) {
        i = at;
        fail(`repeated key ${JSON.stringify(key)}`);
      }
      expect(':');
      dict[key] = parseValue();
      skipSpace();
      if (text[i] === ',') i++;
      else if (text[i] !== '}') fail("expected ',' or '}'");
    }
  };

  const parseValue = (): PyValue => {
    skipSpace();
    const c = text[i];
    if (c === '{') return parseDict();
    if (c === '[') {
      i++;
      return parseItems(']').items;
    }
    if (c === '(') {
      i++;
      const { items, sawComma } = parseItems(')');
      if (items.length === 1 && !sawComma) return items[0]!;
      return items;
    }
    if (c === "'" || c === '"') return parseString();
    const word = /^(-?\d+)L?|^(True|False|None)\b/.exec(text.slice(i, i + 40));
    if (word === null) return fail('unexpected token');
    i += word[0].length;
    if (word[1] !== undefined) return Number(word[1]);
    return word[2] === 'True' ? true : word[2] === 'False' ? false : null;
  };

  const value = parseValue();
  skipSpace();
  if (i !== text.length) fail('trailing text');
  return value;
}
