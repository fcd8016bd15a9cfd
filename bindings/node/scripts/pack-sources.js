#!/usr/bin/env node
// `npm pack` / `npm publish` steps (prepack, postpack). prepack copies the Rust sources of the
// engine into ./rust/, so that the tarball can build libwsembed on the machine it is installed
// on (scripts/install.js); postpack removes the copy again. The files are the crate's own
// package list, `cargo package --list` (Cargo.toml's `include`), so cargo must be on PATH here.
//   node scripts/pack-sources.js copy | clean
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const PKG = path.resolve(__dirname, '..');
const REPO = path.resolve(PKG, '..', '..');
const DEST = path.join(PKG, 'rust');

function clean() {
  fs.rmSync(DEST, { recursive: true, force: true });
}

function copy() {
  if (!fs.existsSync(path.join(REPO, 'Cargo.toml'))) {
    throw new Error(`wsembed: npm pack must run in a wsembed checkout (no Cargo.toml at ${REPO})`);
  }
  const cargo = process.env.CARGO || 'cargo';
  let listing;
  try {
    listing = execFileSync(cargo, ['package', '--list', '--allow-dirty', '--quiet'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    throw new Error(`wsembed: \`${cargo} package --list\` failed in ${REPO} (${e.message}); packing needs Rust's cargo`);
  }
  clean();
  let n = 0;
  for (const rel of listing.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const from = path.join(REPO, rel);
    if (!fs.existsSync(from)) continue; // Cargo.toml.orig, .cargo_vcs_info.json: made by cargo package
    fs.mkdirSync(path.dirname(path.join(DEST, rel)), { recursive: true });
    fs.copyFileSync(from, path.join(DEST, rel));
    n++;
  }
  if (!fs.existsSync(path.join(DEST, 'Cargo.toml'))) throw new Error('wsembed: cargo package --list did not list Cargo.toml');
  console.error(`wsembed: copied ${n} Rust source files into ${DEST}`);
}

const action = process.argv[2];
if (action === 'copy') copy();
else if (action === 'clean') clean();
else {
  console.error('usage: node scripts/pack-sources.js copy|clean');
  process.exit(2);
}
