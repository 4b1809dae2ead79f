#!/usr/bin/env bash
# Installs everything longattn needs on a fresh machine, idempotently:
# system packages (only the missing ones), then the pnpm workspace (pinned pnpm, frozen lockfile).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
# pnpm 12 is run through npx (corepack's signature check fails on this machine kind).
npx --yes pnpm@12.4.2 install --frozen-lockfile
