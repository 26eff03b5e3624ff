//! The `AbortController`s of the refresh attempts under way (their requests, or their waits for
//! the cross-tab lock), one per attempt id. Dropping the set aborts whatever is left in it, so
//! a freed manager leaves no request or lock wait running (after gloo: drop cancels).

use std::cell::RefCell;

use token_manager_core::session::RefreshId;
use web_sys::AbortController;

/// Controllers by refresh attempt; every one still held is aborted on drop.
#[derive(Debug, Default)]
#[must_use = "dropping the set aborts its controllers"]
pub(crate) struct Pending {
    controllers: RefCell<Vec<(RefreshId, AbortController)>>,
}

impl Pending {
    /// Holds `controller` for attempt `id`.
    pub(crate) fn insert(&self, id: RefreshId, controller: AbortController) {
        self.controllers.borrow_mut().push((id, controller));
    }

    /// Gives back the controller of `id` without aborting it (its work has ended).
    pub(crate) fn take(&self, id: RefreshId) -> Option<AbortController> {
        let mut list = self.controllers.borrow_mut();
        let i = list.iter().position(|(a, _)| *a == id)?;
        Some(list.swap_remove(i).1)
    }

    /// Aborts the work of `id`, if it is still held.
    pub(crate) fn abort(&self, id: RefreshId) {
        if let Some(c) = self.take(id) {
            c.abort();
        }
    }

    /// Aborts everything held.
    pub(crate) fn abort_all(&self) {
        for (_, c) in self.controllers.take() {
            c.abort();
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.abort_all();
    }
}
