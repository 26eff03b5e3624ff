// The error thrown to JavaScript (src/error.rs makes every one of them here): an `Error` named
// `TokenManagerError` with a stable `code`, one of the registry's (core::ErrorCode); `message`
// is for people. Neither ever carries a token, a cookie or a password.

/** A `TokenManagerError` with `code` and `message`. */
export function coded(code, message) {
  const error = new Error(message);
  error.name = "TokenManagerError";
  error.code = code;
  return error;
}
