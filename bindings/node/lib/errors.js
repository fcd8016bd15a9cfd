'use strict';
// Errors from result codes: the name comes from the generated enum, the text from the library
// (wsembed_result_text, and wsembed_last_error_message for the detail of a failed call).

const native = require('./native');

const { RESULT, RESULT_NAMES } = native;

function makeError(rc, what, detail) {
  const { f } = native.load();
  const text = f.wsembed_result_text(rc);
  // The engine's detail usually starts with the result's text ("invalid argument: ...").
  const message = detail ? (detail.startsWith(text) ? detail : `${text} (${detail})`) : text;
  // An argument the engine refused is a TypeError, as Node's own ERR_INVALID_ARG_VALUE is.
  const Ctor = rc === RESULT.INVALID_ARGUMENT || rc === RESULT.INVALID_UTF8 || rc === RESULT.NULL_ARGUMENT ? TypeError : Error;
  const err = new Ctor(`wsembed: ${what}: ${message}`);
  err.code = RESULT_NAMES[rc] || `WSEMBED_ERR_${rc}`;
  err.result = rc;
  if (rc === RESULT.IO && /in use/i.test(detail || '')) err.code = 'EADDRINUSE';
  return err;
}

/** The error of a call that just failed with `rc` (reads the thread-local detail right away). */
function failure(rc, what) {
  const { f } = native.load();
  return makeError(rc, what, f.wsembed_last_error_message());
}

module.exports = { makeError, failure };
