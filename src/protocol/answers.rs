//! Error answers: how the admin reports an error, and how a client rebuilds it.

use std::path::PathBuf;

use super::{NotActorBinaryDetail, Response, UnknownTypeDetail};
use crate::error::Error;

impl Response {
    /// The answer that reports `e`: its kind, a message for people, and the particulars a
    /// client needs to rebuild the same error.
    pub(crate) fn error(e: &Error) -> Response {
        let kind = match e {
            Error::ShuttingDown => "ShuttingDown",
            Error::UnknownType { .. } => "UnknownType",
            Error::NotActorBinary { .. } => "NotActorBinary",
            Error::NoCompatibleSystem { .. } => "NoCompatibleSystem",
            _ => "Failed",
        };
        let mut answer = Response::refusal(kind, e.to_string());
        if let Response::Error {
            unknown_type,
            not_actor_binary,
            unmet: unmet_answer,
            ..
        } = &mut answer
        {
            match e {
                Error::UnknownType {
                    type_name,
                    known,
                    binary,
                } => {
                    *unknown_type = Some(UnknownTypeDetail {
                        type_name: type_name.clone(),
                        known: known.clone(),
                        binary: binary.as_ref().map(|b| b.to_string_lossy().into_owned()),
                    })
                }
                Error::NotActorBinary { path, why } => {
                    *not_actor_binary = Some(NotActorBinaryDetail {
                        path: path.to_string_lossy().into_owned(),
                        why: why.clone(),
                    })
                }
                Error::NoCompatibleSystem { unmet } => *unmet_answer = Some(unmet.clone()),
                _ => {}
            }
        }
        answer
    }

    /// An answer of kind `kind` with no particulars.
    pub(crate) fn refusal(kind: &str, message: String) -> Response {
        Response::Error {
            kind: kind.to_string(),
            message,
            unknown_type: None,
            not_actor_binary: None,
            unmet: None,
        }
    }

    /// The answer to a request that makes no sense.
    pub(crate) fn bad_request(message: &str) -> Response {
        Response::refusal("BadRequest", message.to_string())
    }

    /// The error an `Error` answer stands for: the same kind as the admin's where the answer
    /// says enough to rebuild it, else [`Error::Admin`] with its message. Call on `Error`
    /// answers only.
    pub(crate) fn into_error(self) -> Error {
        let Response::Error {
            kind,
            message,
            unknown_type,
            not_actor_binary,
            unmet,
        } = self
        else {
            return Error::Protocol(format!("not an error answer: {self:?}"));
        };
        match (kind.as_str(), unknown_type, not_actor_binary) {
            ("ShuttingDown", ..) => Error::ShuttingDown,
            ("UnknownType", Some(u), _) => Error::UnknownType {
                type_name: u.type_name,
                known: u.known,
                binary: u.binary.map(PathBuf::from),
            },
            ("NotActorBinary", _, Some(n)) => Error::NotActorBinary {
                path: PathBuf::from(n.path),
                why: n.why,
            },
            ("NoCompatibleSystem", ..) if unmet.is_some() => Error::NoCompatibleSystem {
                unmet: unmet.unwrap_or_default(),
            },
            _ => Error::Admin(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `e` answered by an admin, sent over the wire, and read back by a client.
    fn across_the_wire(e: &Error) -> Error {
        let frame = rmp_serde::to_vec_named(&Response::error(e)).unwrap();
        let answer: Response = crate::wire::strict::from_slice(&frame).unwrap();
        answer.into_error()
    }

    #[test]
    fn errors_a_client_can_act_on_keep_their_kind_across_the_wire() {
        let unknown = Error::UnknownType {
            type_name: "Nope".into(),
            known: vec!["Echo".into()],
            binary: Some(PathBuf::from("/bin/zoo")),
        };
        let refused = Error::NotActorBinary {
            path: PathBuf::from("/bin/sh"),
            why: "it does not answer --greenroom-describe".into(),
        };
        let unmet = Error::NoCompatibleSystem {
            unmet: vec!["gpu=yes (here no gpu)".into()],
        };
        for e in [unknown, refused, unmet, Error::ShuttingDown] {
            assert_eq!(across_the_wire(&e).to_string(), e.to_string());
            assert_eq!(
                std::mem::discriminant(&across_the_wire(&e)),
                std::mem::discriminant(&e)
            );
        }
    }

    #[test]
    fn other_errors_arrive_as_the_admins_refusal_with_its_message() {
        let e = Error::BadSystemName("..".into());
        match across_the_wire(&e) {
            Error::Admin(message) => assert_eq!(message, e.to_string()),
            other => panic!("{other:?}"),
        }
        let bad = Response::bad_request("no such thing").into_error();
        assert!(matches!(bad, Error::Admin(m) if m == "no such thing"));
    }
}
