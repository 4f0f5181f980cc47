//! What the database engine reads from the tables besides the fleet ([`super::fleet`]):
//! text is matched on the fleet's distinct texts (`text_words`), each query word first
//! turned into the fleet's words it matches, and those into the texts that have them.

use std::collections::HashSet;

use diesel::prelude::*;

use crate::db::functions::{variants, word_matches};
use crate::db::schema::{text_words, word_variants};
use crate::db::DbConn;

/// For each word of the query, the words of the fleet it matches (exactly, or with one typo
/// when it has three letters or more); `None` when some word matches nothing.
fn matching_words(conn: &mut DbConn, text: &str) -> QueryResult<Option<Vec<Vec<String>>>> {
    let query: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    let wanted: Vec<String> = query.iter().flat_map(|w| variants(w)).collect();
    let known: Vec<String> = word_variants::table
        .filter(word_variants::variant.eq_any(&wanted))
        .select(word_variants::word)
        .distinct()
        .load(conn)?;
    let matches: Vec<Vec<String>> = query
        .iter()
        .map(|w| {
            known
                .iter()
                .filter(|k| word_matches(w, k))
                .cloned()
                .collect()
        })
        .collect();
    Ok((!matches.iter().any(Vec::is_empty)).then_some(matches))
}

/// The fleet's search texts that hold, for every word of `text`, one of the words it
/// matches; `None` when some word matches nothing.
pub fn matching_texts(conn: &mut DbConn, text: &str) -> QueryResult<Option<Vec<String>>> {
    let Some(words) = matching_words(conn, text)? else {
        return Ok(None);
    };
    let pairs: Vec<(String, String)> = text_words::table
        .filter(text_words::word.eq_any(words.iter().flatten()))
        .select((text_words::word, text_words::text))
        .load(conn)?;
    let mut texts: Option<HashSet<&str>> = None;
    for matching in &words {
        let of_word: HashSet<&str> = pairs
            .iter()
            .filter(|(word, _)| matching.contains(word))
            .map(|(_, text)| text.as_str())
            .filter(|t| texts.as_ref().is_none_or(|kept| kept.contains(t)))
            .collect();
        texts = Some(of_word);
    }
    Ok(texts.map(|t| t.into_iter().map(str::to_owned).collect()))
}

/// Cars a full index holds: every car not deleted, active or not.
pub fn count_cars(conn: &mut DbConn) -> QueryResult<i64> {
    crate::db::undeleted_cars(conn, true)
}
