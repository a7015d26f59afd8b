//! Personal data as types (SPEC §10): an ID number, a phone number and a
//! person's name mask themselves in `Debug` and `Display` (`3401**********3238`,
//! `156****9684`, `张*`); the plaintext comes out only through `expose`, at
//! the few places that need it (the decode answer, the card-system call, the
//! push, sealing for storage). Each is built only by parsing.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{bounded, ParseError};
use super::mask;

macro_rules! personal {
    ($name:ident, $mask:path, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The plaintext, for the places that must send or seal it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), $mask(&self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&$mask(&self.0))
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

personal!(
    IdcardNo,
    mask::id,
    "An ID number: 1 to 32 letters or digits (other certificate types exist)."
);
personal!(
    Phone,
    mask::phone,
    "A phone number: 5 to 20 digits, `+` or `-`."
);
personal!(
    PersonName,
    mask::name,
    "A person's name: 1 to 64 characters, no control characters."
);

impl IdcardNo {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = (1..=32).contains(&raw.chars().count())
            && raw.chars().all(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(IdcardNo(raw.to_string()))
        } else {
            Err(ParseError::malformed("idcardNo", "应为1至32位字母或数字"))
        }
    }
}

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = (5..=20).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+');
        if ok {
            Ok(Phone(raw.to_string()))
        } else {
            Err(ParseError::malformed("userPhone", "应为5至20位电话号码"))
        }
    }
}

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty() {
            return Err(ParseError::missing("name"));
        }
        bounded("name", raw, 64).map(PersonName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_and_expose_does_not() {
        let id = IdcardNo::parse("340102199003073238").unwrap();
        let phone = Phone::parse("15665439684").unwrap();
        let name = PersonName::parse("张三").unwrap();
        let shown = format!("{id} {id:?} {phone} {phone:?} {name} {name:?}");
        assert_eq!(shown, "3401**********3238 IdcardNo(3401**********3238) 156****9684 Phone(156****9684) 张* PersonName(张*)");
        assert_eq!(id.expose(), "340102199003073238");
        // serialized for the decode answer and for sealing: plaintext
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"15665439684\"");
        assert!(serde_json::from_str::<IdcardNo>("\"a b\"").is_err());
    }

    #[test]
    fn short_ids_keep_at_most_a_third() {
        let short = IdcardNo::parse("AB123456C").unwrap().to_string();
        let kept = short.chars().filter(|c| *c != '*').count();
        assert!(kept * 3 <= 9, "{short}");
    }
}
