//! Signature verification in headless Chromium: tokens signed by the tests themselves with
//! WebCrypto keys (tests/support/jose.js), checked by `verifyToken` and by a `TokenManager`
//! with the `verify` option. The attack suite lives here too.
#![cfg(all(target_arch = "wasm32", feature = "verify"))]

use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_token_manager::verify_token;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/tests/support/jose.js")]
extern "C" {
    /// Generates a key pair: resolves `{ privateKey, jwk }` (jwk: the public JWK with kid/alg).
    #[wasm_bindgen(js_name = generateKey)]
    fn generate_key(alg: &str, kid: &str) -> js_sys::Promise;
    /// Signs `claims` (an object) with `header` (an object) using the key pair from generateKey.
    fn sign(key: &JsValue, header: &JsValue, claims: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = errorCode)]
    fn error_code(e: &JsValue) -> Option<String>;
}

fn json(s: &str) -> JsValue {
    JSON::parse(s).unwrap()
}

fn set(o: &JsValue, k: &str, v: JsValue) {
    Reflect::set(o, &k.into(), &v).unwrap();
}

async fn key(alg: &str, kid: &str) -> JsValue {
    JsFuture::from(generate_key(alg, kid)).await.unwrap()
}

async fn signed(key: &JsValue, header: &str, claims: &str) -> String {
    JsFuture::from(sign(key, &json(header), &json(claims)))
        .await
        .unwrap()
        .as_string()
        .unwrap()
}

fn options(key: &JsValue, algs: &str) -> JsValue {
    let o: JsValue = Object::new().into();
    let jwks = Object::new();
    set(
        &jwks,
        "keys",
        js_sys::Array::of1(&Reflect::get(key, &"jwk".into()).unwrap()).into(),
    );
    set(&o, "jwks", jwks.into());
    set(&o, "algorithms", json(algs));
    set(&o, "issuer", "https://issuer.test".into());
    set(&o, "audience", "api".into());
    set(&o, "currentTime", 1_800_000_000_000f64.into());
    o
}

const GOOD: &str =
    r#"{"iss":"https://issuer.test","aud":"api","sub":"u1","iat":1799999990,"exp":1800000900}"#;

async fn verify(token: &str, options: &JsValue) -> Result<JsValue, String> {
    JsFuture::from(verify_token(token.into(), options.clone()))
        .await
        .map_err(|e| error_code(&e).unwrap_or_else(|| format!("{e:?}")))
}

#[wasm_bindgen_test]
async fn tokens_signed_with_each_supported_algorithm_verify() {
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let k = key(alg, "k1").await;
        let header = format!(r#"{{"alg":"{alg}","kid":"k1","typ":"at+jwt"}}"#);
        let token = signed(&k, &header, GOOD).await;
        let claims = verify(&token, &options(&k, &format!(r#"["{alg}"]"#)))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(Reflect::get(&claims, &"sub".into()).unwrap(), "u1", "{alg}");
    }
}

#[wasm_bindgen_test]
async fn an_altered_payload_fails_the_signature() {
    let k = key("ES256", "k1").await;
    let token = signed(&k, r#"{"alg":"ES256","kid":"k1"}"#, GOOD).await;
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = GOOD.replace("u1", "admin");
    let b64 = base64_url(&forged_claims);
    let forged = format!("{}.{}.{}", parts[0], b64, parts[2]);
    assert_eq!(
        verify(&forged, &options(&k, r#"["ES256"]"#))
            .await
            .unwrap_err(),
        "bad_signature"
    );
}

fn base64_url(s: &str) -> String {
    let b64 = js_sys::global()
        .dyn_into::<Object>()
        .ok()
        .and_then(|g| Reflect::get(&g, &"btoa".into()).ok())
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call1(&JsValue::NULL, &s.into()).ok())
        .and_then(|v| v.as_string())
        .unwrap();
    b64.trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}
