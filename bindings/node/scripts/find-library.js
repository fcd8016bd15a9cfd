#!/usr/bin/env node
// `npm install` step: finds libwsembed (WSEMBED_LIBRARY, else <repo>/target/release from
// `cargo build --release`), checks that it loads, and records its path in wsembed-library.json
// so the package still finds it when WSEMBED_LIBRARY is not set at run time. A missing library
// is only a warning here: require('wsembed') throws later with the same advice.
'use strict';
const fs = require('fs');
const native = require('../lib/native');

function main() {
  let libraryPath;
  try {
    libraryPath = native.findLibrary();
  } catch (e) {
    console.warn(`wsembed: warning: ${e.message}`);
    return;
  }
  try {
    const { version } = native.load();
    console.log(`wsembed: using ${libraryPath} (wsembed ${version})`);
  } catch (e) {
    console.warn(`wsembed: warning: ${e.message}`);
    return;
  }
  try {
    fs.writeFileSync(native.RECORDED, `${JSON.stringify({ library: libraryPath }, null, 2)}\n`);
  } catch (_) { /* read-only install: the run-time lookup still works */ }
}

main();
