//! [`short_type_name`]: a type's name without module paths, used as the
//! default `pool` label of a manager's metrics.

/// The name of `T` with every module path removed, generic arguments kept.
///
/// [`std::any::type_name`] spells types with their full paths; this keeps
/// only the last segment of each path, inside generic arguments, references,
/// tuples and arrays too. Like `type_name`, the result is meant for humans
/// (labels, logs), not as a stable identifier.
///
/// ```
/// use kvbm::metrics::short_type_name;
///
/// assert_eq!(short_type_name::<u32>(), "u32");
/// assert_eq!(short_type_name::<std::collections::HashMap<String, Vec<u8>>>(), "HashMap<String, Vec<u8>>");
/// assert_eq!(short_type_name::<Option<&std::path::Path>>(), "Option<&Path>");
/// ```
pub fn short_type_name<T: ?Sized + 'static>() -> String {
    strip_paths(std::any::type_name::<T>())
}

/// Replaces every `a::b::C` path in `full` by its last segment `C`.
fn strip_paths(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut path_start = 0;
    for (i, c) in full.char_indices() {
        if !(c.is_alphanumeric() || c == '_' || c == ':') {
            out.push_str(last_segment(&full[path_start..i]));
            out.push(c);
            path_start = i + c.len_utf8();
        }
    }
    out.push_str(last_segment(&full[path_start..]));
    out
}

/// The part of `path` after its last `::`.
fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    mod inner {
        pub struct Manager<T>(pub T);
        pub struct Lru;
    }

    #[test]
    fn plain_and_nested_types() {
        assert_eq!(short_type_name::<inner::Lru>(), "Lru");
        assert_eq!(
            short_type_name::<inner::Manager<inner::Lru>>(),
            "Manager<Lru>"
        );
        assert_eq!(short_type_name::<str>(), "str");
        assert_eq!(short_type_name::<(u8, String)>(), "(u8, String)");
        assert_eq!(short_type_name::<[Vec<u8>; 2]>(), "[Vec<u8>; 2]");
    }

    #[test]
    fn strip_paths_handles_edges() {
        assert_eq!(strip_paths(""), "");
        assert_eq!(strip_paths("a::b::C"), "C");
        assert_eq!(strip_paths("dyn a::T + Send"), "dyn T + Send");
        assert_eq!(strip_paths("x::Y<z::W, 'static>"), "Y<W, 'static>");
    }
}
