//! The vocabulary at the database edge: a stored word is read back into its enum, and a word
//! this build does not know fails the load of its row, naming the column and the value,
//! instead of becoming some default (a ticket in an unknown state must not be worked on as
//! if it were waiting for an agent). The migrations' CHECK constraints keep such words out.

use crate::domain::event::EventType;
use crate::domain::ticket::{Channel, Kind, State};

/// A stored word that is not in its column's vocabulary.
#[derive(Debug, thiserror::Error)]
#[error("{column} holds {value:?}, which this version does not know (expected one of: {expected})")]
pub struct UnknownWord {
    pub column: &'static str,
    pub value: String,
    pub expected: String,
}

/// How much of an unknown value an error repeats: enough to recognise it.
const SHOWN: usize = 64;

macro_rules! read_back {
    ($ty:ty, $column:literal) => {
        impl TryFrom<String> for $ty {
            type Error = UnknownWord;

            fn try_from(value: String) -> Result<Self, UnknownWord> {
                <$ty>::parse(&value).ok_or_else(|| UnknownWord {
                    column: $column,
                    value: value.chars().take(SHOWN).collect(),
                    expected: <$ty>::ALL
                        .iter()
                        .map(|w| w.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    };
}

read_back!(Kind, "tickets.kind");
read_back!(State, "tickets.state");
read_back!(Channel, "tickets.channel");
read_back!(EventType, "events.event_type");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_word_names_its_column_and_value() {
        assert_eq!(State::try_from("resolved".to_string()).unwrap(), State::Resolved);
        let message = State::try_from("nonsense".to_string()).unwrap_err().to_string();
        assert!(message.starts_with("tickets.state holds \"nonsense\""), "{message}");
        assert!(message.contains("awaiting_agent"), "{message}");
        let message = Kind::try_from("x".repeat(10_000)).unwrap_err().to_string();
        assert!(message.starts_with("tickets.kind holds"), "{message}");
        assert!(message.len() < 400, "a huge value is not repeated whole");
        assert!(Channel::try_from("phone".to_string()).is_err());
        assert!(EventType::try_from("Created".to_string()).is_err());
    }

    #[test]
    fn the_migrations_checks_hold_exactly_the_vocabulary() {
        let sqlite = include_str!("../../migrations/sqlite/2026-12-08-000032_vocabulary_checks/up.sql");
        let postgres = include_str!("../../migrations/postgres/2026-12-08-000032_vocabulary_checks/up.sql");
        let sqlite_by_case =
            include_str!("../../migrations/sqlite/2026-12-12-000037_vocabulary_checks_without_lists/up.sql");
        let words: Vec<&str> = Kind::ALL
            .iter()
            .map(|w| w.as_str())
            .chain(State::ALL.iter().map(|w| w.as_str()))
            .chain(Channel::ALL.iter().map(|w| w.as_str()))
            .chain(EventType::ALL.iter().map(|w| w.as_str()))
            .collect();
        for sql in [sqlite, postgres, sqlite_by_case] {
            let quoted: Vec<&str> = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--") && !l.contains("RAISE"))
                .flat_map(|l| l.split('\'').skip(1).step_by(2))
                .collect();
            for word in &words {
                assert!(quoted.contains(word), "{word} is missing from a CHECK");
            }
            for word in &quoted {
                assert!(words.contains(word), "{word} is checked but is not in the vocabulary");
            }
        }
    }
}
