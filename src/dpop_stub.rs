//! Without the `dpop` feature: DPoP state that cannot exist, so every proof path is compiled
//! out and the default package stays small; the option `dpop: true` is refused.

use std::rc::Rc;

use token_manager_core::ErrorCode;
use wasm_bindgen::JsValue;
use web_sys::{Headers, Request, Response};

use crate::driver::Driver;
use crate::http::Answer;

#[derive(Debug)]
pub(crate) enum Dpop {}

#[derive(Debug)]
pub(crate) enum KeyPair {}

#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum SendError {
    Proof,
    Fetch(JsValue),
}

/// Whether this build makes proofs: the paths only DPoP tokens take are compiled out.
pub(crate) const ENABLED: bool = false;

/// `dpop: true` needs the build with the feature.
pub(crate) fn check_option(enabled: bool) -> Result<bool, JsValue> {
    if enabled {
        Err(crate::error::coded(
            ErrorCode::DpopUnavailable,
            "option `dpop` needs the build with DPoP: import from \"wasm-token-manager/verify\"",
        ))
    } else {
        Ok(false)
    }
}

impl Dpop {
    pub(crate) fn new(_: bool) -> Option<Self> {
        None
    }

    pub(crate) async fn key(&self, _: bool) -> Result<Rc<KeyPair>, SendError> {
        match *self {}
    }

    pub(crate) fn current(&self) -> Option<Rc<KeyPair>> {
        match *self {}
    }

    pub(crate) fn adopt(&self, _: Rc<KeyPair>) {
        match *self {}
    }

    pub(crate) fn forget(&self) {
        match *self {}
    }

    pub(crate) async fn send(
        &self,
        _: &Driver,
        _: &KeyPair,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: &dyn Fn(&str) -> Result<Request, JsValue>,
    ) -> Result<Response, SendError> {
        match *self {}
    }

    pub(crate) async fn exchange(
        &self,
        _: &Driver,
        _: &KeyPair,
        _: &str,
        _: Option<&str>,
        _: &dyn Fn(&str) -> Result<Request, JsValue>,
    ) -> Result<Answer, SendError> {
        match *self {}
    }
}

impl KeyPair {
    pub(crate) fn to_message(&self) -> JsValue {
        match *self {}
    }

    pub(crate) fn from_message(_: &JsValue) -> Option<Rc<Self>> {
        None
    }
}

pub(crate) fn set_proof(_: &Headers, _: &str) -> Result<(), JsValue> {
    Ok(())
}
