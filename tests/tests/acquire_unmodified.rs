//! `VK_EXT_external_memory_acquire_unmodified` on a driver that lacks it
//! (lavapipe): through the layer the device lists it, a device created with
//! it works, and an acquire carrying `VkExternalMemoryAcquireUnmodifiedEXT`
//! gives validation below the layer nothing to say. The controls: without
//! the layer the driver refuses the extension, and a structure the layer
//! does not take out (the extension not enabled) reaches validation.

mod common;

use common::{check_validation, client, run_unchecked, skip, Layer, Validation, CLIENT};
use dynabuf_client::env::validation_layer_dir;

#[test]
fn through_the_layer_the_extension_is_listed_enabled_and_works() {
    let run = client(&["acquire-unmodified", "listed"], Layer::On, &[("DYNABUF_STATS", "1")])
        .expect_ok("acquire-unmodified listed");
    assert_eq!(run.value("enabled").as_deref(), Some("true"), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.value("content_ok").as_deref(), Some("true"), "{}", run.stdout);
    assert!(run.stderr.contains("acquires_recorded=1"), "the acquire was seen:\n{}", run.stderr);
    let required =
        client(&["acquire-unmodified", "required"], Layer::On, &[]).expect_ok("acquire-unmodified required");
    assert_eq!(required.value("create_device").as_deref(), Some("SUCCESS"), "{}", required.stdout);
}

#[test]
fn without_the_layer_lavapipe_refuses_the_extension() {
    let run = client(&["acquire-unmodified", "required"], Layer::Off, &[]).expect_ok("required, no layer");
    let said = run.value("create_device").unwrap_or_default();
    if said == "SUCCESS" {
        skip(
            "without_the_layer_lavapipe_refuses_the_extension",
            "the driver has VK_EXT_external_memory_acquire_unmodified itself",
        );
        return;
    }
    assert!(said.contains("ERROR_EXTENSION_NOT_PRESENT"), "{said}");
    let listed = client(&["acquire-unmodified", "listed"], Layer::Off, &[]).expect_ok("listed, no layer");
    assert_eq!(listed.value("enabled").as_deref(), Some("false"), "{}", listed.stdout);
}

#[test]
fn validation_below_sees_no_structure_of_an_extension_it_was_not_asked_for() {
    let test = "validation_below_sees_no_structure_of_an_extension_it_was_not_asked_for";
    if validation_layer_dir().is_none() {
        assert_eq!(Validation::from_env(), Validation::Off, "validation asked for but not installed");
        skip(test, "the Khronos validation layer is not installed (package vulkan-validationlayers)");
        return;
    }
    let args = ["acquire-unmodified", "listed"];
    let run = run_unchecked(CLIENT, &args, Layer::On, Validation::Below, &[]);
    check_validation("dynabuf-client acquire-unmodified listed", Layer::On, Validation::Below, &run);
    let run = run.expect_ok("acquire-unmodified listed, validation below");
    assert_eq!(run.value("enabled").as_deref(), Some("true"), "{}", run.stdout);
    assert!(run.validation_messages().is_empty(), "{}", run.stderr);
    // The control: the same structure with the extension not enabled (the
    // layer takes nothing out) is reported.
    let control =
        run_unchecked(CLIENT, &["acquire-unmodified", "unlisted"], Layer::On, Validation::Below, &[])
            .expect_ok("acquire-unmodified unlisted");
    let ids: Vec<String> = control.validation_messages().into_iter().map(|m| m.id).collect();
    assert!(
        ids.iter().any(|id| id.contains("pNext")),
        "validation should report the structure: {ids:?}\n{}",
        control.stderr
    );
}
