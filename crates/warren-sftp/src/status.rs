//! SSH_FXP_STATUS codes (draft section 7) and their text.

pub const OK: u32 = 0;
pub const EOF: u32 = 1;
pub const NO_SUCH_FILE: u32 = 2;
pub const PERMISSION_DENIED: u32 = 3;
pub const FAILURE: u32 = 4;
pub const BAD_MESSAGE: u32 = 5;
pub const NO_CONNECTION: u32 = 6;
pub const CONNECTION_LOST: u32 = 7;
pub const OP_UNSUPPORTED: u32 = 8;

/// What `code` means, in a few words (the texts of OpenSSH's `fx2txt`);
/// for a code this version does not define, "unknown status".
pub fn describe(code: u32) -> &'static str {
    match code {
        OK => "success",
        EOF => "end of file",
        NO_SUCH_FILE => "no such file",
        PERMISSION_DENIED => "permission denied",
        FAILURE => "failure",
        BAD_MESSAGE => "bad message",
        NO_CONNECTION => "no connection",
        CONNECTION_LOST => "connection lost",
        OP_UNSUPPORTED => "operation unsupported",
        _ => "unknown status",
    }
}
