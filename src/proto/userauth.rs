//! User authentication, client side (RFC 4252, RFC 4256 keyboard-interactive).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zeroize::Zeroizing;

use super::msg;
use crate::wire::{Reader, Writer};
use crate::{Error, ErrorKind, Result};

const SERVICE: &str = "ssh-connection";
/// Prompts in one keyboard-interactive round beyond which a server is being abusive.
const MAX_PROMPTS: usize = 64;

/// A method being tried, which decides how message 60 is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    None,
    Password,
    PublicKey,
    KeyboardInteractive,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Password => "password",
            Method::PublicKey => "publickey",
            Method::KeyboardInteractive => "keyboard-interactive",
        }
    }
}

/// One keyboard-interactive round of prompts from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoRequest {
    pub name: String,
    pub instruction: String,
    /// Prompt text and whether the answer may be echoed.
    pub prompts: Vec<(String, bool)>,
}

/// Where authentication stands, as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStatus {
    /// Waiting for the server to accept the ssh-userauth service.
    AwaitingService,
    /// Ready for a request.
    Ready,
    /// A request is outstanding.
    Pending(Method),
    /// The server asks keyboard-interactive questions; answer with `info_response`.
    InfoRequest(InfoRequest),
    /// The last request failed; `methods` may continue. With `partial`, the request
    /// succeeded but more authentication is required.
    Failed { methods: Vec<String>, partial: bool },
    /// Authenticated.
    Success,
}

/// Client authentication state.
pub(super) struct ClientAuth {
    pub status: AuthStatus,
    pub username: String,
    /// The server's userauth banner, if it sent one.
    pub banner: Option<String>,
}

impl ClientAuth {
    pub fn new() -> Self {
        ClientAuth {
            status: AuthStatus::AwaitingService,
            username: String::new(),
            banner: None,
        }
    }

    pub fn service_request() -> Vec<u8> {
        let mut w = Writer::message(msg::SERVICE_REQUEST);
        w.string("ssh-userauth");
        w.into_bytes()
    }

    pub fn on_service_accept(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        if r.string("service name")? != b"ssh-userauth"
            || self.status != AuthStatus::AwaitingService
        {
            return Err(Error::protocol("unexpected SERVICE_ACCEPT"));
        }
        self.status = AuthStatus::Ready;
        Ok(())
    }

    fn begin(&mut self, user: &str, method: Method) -> Result<Writer> {
        match &self.status {
            // A new request abandons an unanswered keyboard-interactive round (RFC 4252 §5).
            AuthStatus::Ready | AuthStatus::Failed { .. } | AuthStatus::InfoRequest(_) => {}
            AuthStatus::Success => {
                return Err(Error::new(ErrorKind::State, "already authenticated"))
            }
            AuthStatus::AwaitingService => {
                return Err(Error::new(
                    ErrorKind::State,
                    "the server has not accepted the userauth service yet",
                ))
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::State,
                    "an authentication request is already in progress",
                ))
            }
        }
        self.username = user.to_owned();
        self.status = AuthStatus::Pending(method);
        let mut w = Writer::message(msg::USERAUTH_REQUEST);
        w.string(user).string(SERVICE).string(method.name());
        Ok(w)
    }

    pub fn none(&mut self, user: &str) -> Result<Vec<u8>> {
        Ok(self.begin(user, Method::None)?.into_bytes())
    }

    pub fn password(&mut self, user: &str, password: &str) -> Result<Zeroizing<Vec<u8>>> {
        let mut w = self.begin(user, Method::Password)?;
        w.bool(false).string(password);
        Ok(Zeroizing::new(w.into_bytes()))
    }

    /// A publickey request carrying `signature`, made over [`publickey_signed_data`].
    pub fn publickey(
        &mut self,
        user: &str,
        algorithm: &str,
        blob: &[u8],
        signature: &[u8],
    ) -> Result<Vec<u8>> {
        let mut w = self.begin(user, Method::PublicKey)?;
        w.bool(true)
            .string(algorithm)
            .string(blob)
            .string(signature);
        Ok(w.into_bytes())
    }

    pub fn keyboard_interactive(&mut self, user: &str) -> Result<Vec<u8>> {
        let mut w = self.begin(user, Method::KeyboardInteractive)?;
        w.string("").string("");
        Ok(w.into_bytes())
    }

    /// Answers the outstanding keyboard-interactive round.
    pub fn info_response(&mut self, answers: &[String]) -> Result<Zeroizing<Vec<u8>>> {
        let AuthStatus::InfoRequest(req) = &self.status else {
            return Err(Error::new(
                ErrorKind::State,
                "no keyboard-interactive question is pending",
            ));
        };
        if answers.len() != req.prompts.len() {
            return Err(Error::invalid_arg(format!(
                "{} answers given for {} prompts",
                answers.len(),
                req.prompts.len()
            )));
        }
        let mut w = Writer::message(msg::USERAUTH_INFO_RESPONSE);
        w.u32(answers.len() as u32);
        for a in answers {
            w.string(a);
        }
        self.status = AuthStatus::Pending(Method::KeyboardInteractive);
        Ok(Zeroizing::new(w.into_bytes()))
    }

    pub fn on_failure(&mut self, payload: &[u8]) -> Result<()> {
        self.expect_pending()?;
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let methods = r
            .name_list("authentications that can continue")?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let partial = r.bool("partial success")?;
        self.status = AuthStatus::Failed { methods, partial };
        Ok(())
    }

    pub fn on_success(&mut self) -> Result<()> {
        self.expect_pending()?;
        self.status = AuthStatus::Success;
        Ok(())
    }

    pub fn on_banner(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let text = String::from_utf8_lossy(r.string("banner")?).into_owned();
        self.banner = Some(text);
        Ok(())
    }

    /// Message 60: PK_OK, PASSWD_CHANGEREQ or INFO_REQUEST depending on the method.
    pub fn on_60(&mut self, payload: &[u8]) -> Result<()> {
        let method = self.expect_pending()?;
        match method {
            Method::KeyboardInteractive => {
                self.status = AuthStatus::InfoRequest(parse_info_request(payload)?);
                Ok(())
            }
            Method::Password => {
                // We do not offer password changes: treat the request as a refusal.
                self.status = AuthStatus::Failed {
                    methods: vec![],
                    partial: false,
                };
                Err(Error::new(
                    ErrorKind::AuthDenied,
                    "the server requires a password change",
                ))
            }
            _ => Err(Error::protocol(format!(
                "unexpected message 60 during {} authentication",
                method.name()
            ))),
        }
    }

    fn expect_pending(&self) -> Result<Method> {
        match self.status {
            AuthStatus::Pending(m) => Ok(m),
            _ => Err(Error::protocol("authentication reply without a request")),
        }
    }
}

/// The bytes a publickey signature covers (RFC 4252 §7): the session id, then the request
/// itself up to the signature.
pub fn publickey_signed_data(
    session_id: &[u8],
    user: &str,
    algorithm: &str,
    blob: &[u8],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(session_id)
        .u8(msg::USERAUTH_REQUEST)
        .string(user)
        .string(SERVICE)
        .string("publickey")
        .bool(true)
        .string(algorithm)
        .string(blob);
    w.into_bytes()
}

fn parse_info_request(payload: &[u8]) -> Result<InfoRequest> {
    let mut r = Reader::new(payload);
    r.u8("message number")?;
    let text = |r: &mut Reader, what| -> Result<String> {
        Ok(String::from_utf8_lossy(r.string(what)?).into_owned())
    };
    let name = text(&mut r, "name")?;
    let instruction = text(&mut r, "instruction")?;
    r.string("language tag")?;
    let count = r.u32("prompt count")? as usize;
    if count > MAX_PROMPTS {
        return Err(Error::protocol(format!(
            "keyboard-interactive request with {count} prompts"
        )));
    }
    let mut prompts = Vec::with_capacity(count);
    for _ in 0..count {
        let prompt = text(&mut r, "prompt")?;
        prompts.push((prompt, r.bool("echo")?));
    }
    Ok(InfoRequest {
        name,
        instruction,
        prompts,
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    fn accepted() -> ClientAuth {
        let mut a = ClientAuth::new();
        let mut w = Writer::message(msg::SERVICE_ACCEPT);
        w.string("ssh-userauth");
        a.on_service_accept(w.as_bytes()).unwrap();
        a
    }

    #[test]
    fn failure_lists_methods_and_partial() {
        let mut a = accepted();
        a.none("alice").unwrap();
        let mut w = Writer::message(msg::USERAUTH_FAILURE);
        w.name_list(&["publickey", "password"]).bool(true);
        a.on_failure(w.as_bytes()).unwrap();
        assert_eq!(
            a.status,
            AuthStatus::Failed {
                methods: vec!["publickey".into(), "password".into()],
                partial: true
            }
        );
    }

    #[test]
    fn unsolicited_success_is_a_protocol_error() {
        assert!(accepted().on_success().is_err());
    }

    #[test]
    fn info_request_round() {
        let mut a = accepted();
        a.keyboard_interactive("bob").unwrap();
        let mut w = Writer::message(msg::USERAUTH_60);
        w.string("n")
            .string("i")
            .string("")
            .u32(2)
            .string("Password: ")
            .bool(false)
            .string("Code: ")
            .bool(true);
        a.on_60(w.as_bytes()).unwrap();
        let AuthStatus::InfoRequest(req) = &a.status else {
            panic!("no request")
        };
        assert_eq!(req.prompts[1], ("Code: ".to_owned(), true));
        assert!(a.info_response(&["x".into()]).is_err());
        a.info_response(&["x".into(), "y".into()]).unwrap();
        assert_eq!(a.status, AuthStatus::Pending(Method::KeyboardInteractive));
    }

    #[test]
    fn hostile_prompt_count_is_refused() {
        let mut a = accepted();
        a.keyboard_interactive("bob").unwrap();
        let mut w = Writer::message(msg::USERAUTH_60);
        w.string("").string("").string("").u32(u32::MAX);
        assert!(a.on_60(w.as_bytes()).is_err());
    }
}
