//! "Did you mean …?" — the closest known name to a misspelt one.

/// The candidate closest to `word` by edit distance (with transpositions), if it is close
/// enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        if cand == word {
            continue;
        }
        let d = distance(&word_lower, &cand.to_ascii_lowercase());
        let limit = match cand.chars().count().max(word.chars().count()) {
            0..=3 => 1,
            4..=6 => 2,
            _ => 3,
        };
        let prefix_match = cand.len() >= 3
            && word.len() >= 3
            && (cand.starts_with(&word_lower) || word_lower.starts_with(cand));
        if (d <= limit || (prefix_match && d <= limit + 2)) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// A help line "did you mean `x`?" when there is a suggestion.
pub fn help<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(word, candidates).map(|s| format!("did you mean `{s}`?"))
}

/// Optimal string alignment distance.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        let keys = ["needs", "name", "when", "timeout", "retry"];
        assert_eq!(did_you_mean("nedds", keys), Some("needs"));
        assert_eq!(did_you_mean("tiemout", keys), Some("timeout"));
        assert_eq!(did_you_mean("banana", keys), None);
        assert_eq!(
            did_you_mean("k8s.pod", ["k8s.pods", "k8s.get"]),
            Some("k8s.pods")
        );
    }
}
