//! Session channel requests (RFC 4254 §6): the client's (pty, shell, subsystem, environment,
//! window size, X11, agent forwarding) and the server's (exit status and exit signal).

use super::server_handler::{PtyRequest, WindowChange, X11Request};
use super::Channel;
use crate::wire::Writer;
use crate::Result;

impl Channel {
    /// Asks for a pseudo-terminal (Paramiko's get_pty).
    pub fn get_pty(&self, pty: &PtyRequest) -> Result<()> {
        let mut body = Writer::new();
        body.string(&pty.term)
            .u32(pty.width_chars)
            .u32(pty.height_rows)
            .u32(pty.width_pixels)
            .u32(pty.height_pixels)
            .string(&pty.modes);
        self.request("pty-req", body.as_bytes())
    }

    /// Starts the user's shell.
    pub fn invoke_shell(&self) -> Result<()> {
        self.request("shell", &[])
    }

    /// Starts subsystem `name` ("sftp").
    pub fn invoke_subsystem(&self, name: &str) -> Result<()> {
        let mut body = Writer::new();
        body.string(name);
        self.request("subsystem", body.as_bytes())
    }

    /// Sets an environment variable for the command or shell to come.
    pub fn set_environment_variable(&self, name: &str, value: &str) -> Result<()> {
        let mut body = Writer::new();
        body.string(name).string(value);
        self.request("env", body.as_bytes())
    }

    /// Tells the server the terminal's new size.
    pub fn resize_pty(&self, size: &WindowChange) -> Result<()> {
        let mut body = Writer::new();
        body.u32(size.width_chars)
            .u32(size.height_rows)
            .u32(size.width_pixels)
            .u32(size.height_pixels);
        self.notify("window-change", body.as_bytes())
    }

    /// Asks for X11 forwarding.
    pub fn request_x11(&self, x11: &X11Request) -> Result<()> {
        let mut body = Writer::new();
        body.bool(x11.single_connection)
            .string(&x11.auth_protocol)
            .string(&x11.auth_cookie)
            .u32(x11.screen);
        self.request("x11-req", body.as_bytes())
    }

    /// Asks for ssh-agent forwarding.
    pub fn request_forward_agent(&self) -> Result<()> {
        self.request("auth-agent-req@openssh.com", &[])
    }

    /// Server side: reports the command's exit code.
    pub fn send_exit_status(&self, code: u32) -> Result<()> {
        let mut body = Writer::new();
        body.u32(code);
        self.notify("exit-status", body.as_bytes())
    }

    /// Server side: reports that the command died of `signal` (without "SIG").
    pub fn send_exit_signal(&self, signal: &str, core_dumped: bool, message: &str) -> Result<()> {
        let mut body = Writer::new();
        body.string(signal)
            .bool(core_dumped)
            .string(message)
            .string("");
        self.notify("exit-signal", body.as_bytes())
    }
}
