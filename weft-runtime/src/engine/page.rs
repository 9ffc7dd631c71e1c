//! One page of a listing: the single pagination type of every `Engine` listing
//! ([`Engine::list`](super::Engine::list), [`Engine::pending_reviews`](super::Engine::pending_reviews),
//! [`Engine::list_schedules`](super::Engine::list_schedules)), and the check of the token that
//! continues it.
use super::EngineError;

/// One page of a listing, in key order (workflow id or schedule id).
///
/// Every listing takes a page size and an optional page token, and answers a `Page`: pass its
/// `next_page_token` back to continue after it. Tokens are opaque; one that a listing did not
/// hand out is refused with [`EngineError::InvalidPageToken`] when it cannot be read, and
/// otherwise continues after the position it names.
///
/// ```
/// # use weft_runtime::{Engine, EngineError, ListFilter, Page, engine::WorkflowSummary};
/// // Reads every workflow, 100 at a time.
/// async fn every_workflow(engine: &Engine) -> Result<Vec<WorkflowSummary>, EngineError> {
///     let mut all = Vec::new();
///     let mut token = None;
///     loop {
///         let page: Page<WorkflowSummary> =
///             engine.list(&ListFilter::default(), 100, token.as_deref()).await?;
///         all.extend(page.items);
///         match page.next_page_token {
///             Some(next) => token = Some(next),
///             None => return Ok(all),
///         }
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Pass to the same listing to continue after this page; `None` on the last page. A full
    /// page always has one, so the page after it may be empty.
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items` when `page_size` were asked for: full, it continues after the key
    /// `key_of` gives its last item.
    pub(crate) fn of(items: Vec<T>, page_size: usize, key_of: impl Fn(&T) -> &str) -> Self {
        let next_page_token = if items.len() >= page_size {
            items.last().map(|item| key_of(item).to_string())
        } else {
            None
        };
        Page {
            items,
            next_page_token,
        }
    }
}

/// The key a page token continues after: `None` for the first page. An empty token, or one with
/// a NUL (which no id holds), is refused.
pub(crate) fn token_key(page_token: Option<&str>) -> Result<Option<&str>, EngineError> {
    match page_token {
        None => Ok(None),
        Some(token) if token.is_empty() || token.contains('\0') => {
            Err(EngineError::InvalidPageToken)
        }
        Some(token) => Ok(Some(token)),
    }
}

/// Where a scan of the keys under `prefix` resumes for a token that names `after_key`: `Ok(None)`
/// from the start (the token sorts before the prefix), `Ok(Some(key))` after that key, `Err(())`
/// when the token sorts past the prefix (nothing is left).
pub(crate) fn resume_after(prefix: &[u8], after_key: Vec<u8>) -> Result<Option<Vec<u8>>, ()> {
    if after_key.starts_with(prefix) {
        Ok(Some(after_key))
    } else if after_key.as_slice() < prefix {
        Ok(None)
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_continues_after_its_last_key_and_a_short_one_ends() {
        let full = Page::of(vec!["a", "b"], 2, |s| s);
        assert_eq!(full.next_page_token.as_deref(), Some("b"));
        let short = Page::of(vec!["a"], 2, |s| s);
        assert_eq!(short.next_page_token, None);
        let empty: Page<&str> = Page::of(Vec::new(), 2, |s| s);
        assert_eq!(empty.next_page_token, None);
    }

    #[test]
    fn unreadable_tokens_are_refused() {
        assert!(matches!(
            token_key(Some("")),
            Err(EngineError::InvalidPageToken)
        ));
        assert!(matches!(
            token_key(Some("a\0b")),
            Err(EngineError::InvalidPageToken)
        ));
        assert_eq!(token_key(Some("order-7")).unwrap(), Some("order-7"));
        assert_eq!(token_key(None).unwrap(), None);
    }

    #[test]
    fn a_token_outside_the_prefix_starts_over_or_ends() {
        assert_eq!(
            resume_after(b"p/b", b"p/b1".to_vec()),
            Ok(Some(b"p/b1".to_vec()))
        );
        assert_eq!(resume_after(b"p/b", b"p/a".to_vec()), Ok(None));
        assert_eq!(resume_after(b"p/b", b"p/c".to_vec()), Err(()));
    }
}
