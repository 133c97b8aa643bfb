//! Grouping repeated notes of a run: notes that differ only in their numbers collapse into
//! one line that shows, per number, its value when all agree and its range otherwise
//! (e.g. twelve "AGF round k: the cost phase stopped at t = 1.000e2 with ‖∇C‖ = … > gtol"
//! become "AGF round 2–13: … ‖∇C‖ = 5.1e-4 … 4.9e-2 > gtol …", prefixed by "12 notes:").

/// A piece of a note: literal text or a number (its text and value).
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Number(String, f64),
}

/// Split a note into text and numbers. A number starts at a digit (or a `-` followed by a
/// digit) that does not continue a word (`h1`, `W_2`, `x̂_3`, `cost.t_max` stay text) and
/// reads `123`, `1.5`, `1.000e2`, `5e-4`.
fn tokenize(s: &str) -> Vec<Piece> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        let word_before = prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.');
        let starts_digit = chars[i].is_ascii_digit();
        let starts_minus = chars[i] == '-'
            && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
            && prev.is_none_or(|p| p.is_whitespace() || p == '(' || p == '=' || p == '[');
        if (starts_digit || starts_minus) && !word_before {
            let start = i;
            if starts_minus {
                i += 1;
            }
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '-' || chars[j] == '+') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            // A number glued to a following letter (`3rd`, `2D`) is text.
            if i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '_') {
                text.extend(&chars[start..i]);
                continue;
            }
            let num: String = chars[start..i].iter().collect();
            match num.parse::<f64>() {
                Ok(v) => {
                    if !text.is_empty() {
                        out.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    out.push(Piece::Number(num, v));
                }
                Err(_) => text.push_str(&num),
            }
        } else {
            text.push(chars[i]);
            i += 1;
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

/// The note with every number replaced by a placeholder: notes with equal templates are
/// one group.
fn template(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Number(..) => "\u{0}",
        })
        .collect()
}

/// One line for a group of notes with the same template: each number as is when every
/// note has the same one, else `min–max` (integers) or `min … max`.
fn merge(group: &[Vec<Piece>]) -> String {
    let first = &group[0];
    let mut out = String::new();
    for (k, p) in first.iter().enumerate() {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Number(text, _) => {
                let all: Vec<(&str, f64)> = group
                    .iter()
                    .filter_map(|g| match g.get(k) {
                        Some(Piece::Number(t, v)) => Some((t.as_str(), *v)),
                        _ => None,
                    })
                    .collect();
                if all.iter().all(|(t, _)| t == text) {
                    out.push_str(text);
                    continue;
                }
                let lo = all
                    .iter()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or(&all[0]);
                let hi = all
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or(&all[0]);
                let integers = all
                    .iter()
                    .all(|(t, _)| t.chars().all(|c| c.is_ascii_digit()));
                if integers {
                    out.push_str(&format!("{}–{}", lo.0, hi.0));
                } else {
                    out.push_str(&format!("{} … {}", lo.0, hi.0));
                }
            }
        }
    }
    out
}

/// Group `notes` (first-seen order): notes that differ only in their numbers become one
/// line; returns `(count, line)` per group (count 1: the note unchanged).
pub fn group_notes(notes: &[String]) -> Vec<(usize, String)> {
    let mut groups: Vec<(String, Vec<Vec<Piece>>, &String)> = Vec::new();
    for n in notes {
        let pieces = tokenize(n);
        let key = template(&pieces);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                if !g.1.iter().any(|p| p == &pieces) {
                    g.1.push(pieces);
                }
            }
            None => groups.push((key, vec![pieces], n)),
        }
    }
    groups
        .into_iter()
        .map(|(_, g, original)| {
            if g.len() == 1 {
                (1, original.clone())
            } else {
                (g.len(), merge(&g))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_words_are_text() {
        let p = tokenize("h1 W_2 cost.t_max x̂_3 2D round 12: t = 1.000e2, gtol -5e-4");
        let nums: Vec<f64> = p
            .iter()
            .filter_map(|p| match p {
                Piece::Number(_, v) => Some(*v),
                _ => None,
            })
            .collect();
        assert_eq!(nums, [12.0, 100.0, -5e-4]);
    }

    #[test]
    fn rounds_collapse_with_ranges() {
        let notes: Vec<String> = (2..=13)
            .map(|k| {
                format!(
                    "AGF round {k}: the cost phase stopped at t = 1.000e2 with ‖∇C‖ = {:.3e} > gtol = 1.0e-8",
                    5e-4 * (k as f64)
                )
            })
            .chain(["something else entirely".to_string()])
            .collect();
        let g = group_notes(&notes);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, 12);
        assert_eq!(
            g[0].1,
            "AGF round 2–13: the cost phase stopped at t = 1.000e2 with ‖∇C‖ = 1.000e-3 … 6.500e-3 > gtol = 1.0e-8"
        );
        assert_eq!(g[1], (1, "something else entirely".to_string()));
    }

    #[test]
    fn duplicates_count_once_and_singletons_are_unchanged() {
        let notes = vec!["a 1".to_string(), "a 1".to_string(), "b".to_string()];
        assert_eq!(
            group_notes(&notes),
            [(1, "a 1".to_string()), (1, "b".to_string())]
        );
    }
}
