//! The kernel tier (DESIGN.md, test tier 3): real dma-bufs (udmabuf),
//! foreign fences (vgem), DRM syncobjs (virtio_gpu) and lavapipe exporting
//! and importing dma-bufs under the layer. On a host whose kernel cannot
//! make dma-bufs every test reports itself skipped; `scripts/test.sh` runs
//! this binary again inside a VM booting a stock 6.12 kernel
//! (`tests/vm/run.sh`), where nothing may skip, twice: plain and with
//! `DYNABUF_TEST_VALIDATION=below` (every client, also the `Layer::Off`
//! controls, then runs the Khronos validation layer, and a message that
//! validation alone does not produce fails the test). `images::` shares
//! images (RGBA8 linear and DRM-modifier, NV12 and three-plane, disjoint
//! planes) instead of buffers. `hazards::` checks the sharing mistakes the
//! layer reports to debug messengers, `cpu_sync::` its bracketing of host
//! access to mapped dma-buf memory.

mod child;
mod cli;
#[path = "../common/mod.rs"]
mod common;
mod cpu_sync;
mod dynamic;
mod fixture;
mod harness;
mod hazards;
mod images;
mod implicit_sync;
mod remap;
mod robustness;
mod statistics;
mod sync_file_semantics;
mod syncobj;
mod vulkan;
mod whose;

use harness::Test;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        &[$(Test { name: concat!(stringify!($module), "::", stringify!($name)), run: $module::$name }),*]
    };
}

const TESTS: &[Test] = tests![
    sync_file_semantics::udmabuf_is_a_dma_buf_with_identity_size_and_name,
    sync_file_semantics::an_idle_buffer_exports_signalled_fences,
    sync_file_semantics::export_read_waits_only_for_writers,
    sync_file_semantics::export_write_waits_for_writers_and_readers,
    sync_file_semantics::import_read_fence_blocks_only_writers,
    sync_file_semantics::import_write_fence_blocks_everyone,
    sync_file_semantics::merged_fence_signals_when_both_have,
    sync_file_semantics::waits_are_bounded_by_their_timeout,
    sync_file_semantics::cpu_access_is_bracketed,
    sync_file_semantics::prime_import_gives_one_handle_per_buffer,
    syncobj::syncobj_round_trips_on_virtio_gpu,
    syncobj::drm_nodes_are_found_by_driver_name,
    whose::a_vgem_buffer_is_local_to_vgem_and_foreign_to_virtio_gpu,
    vulkan::vulkan_imports_a_dma_buf_under_the_layer,
    vulkan::vulkan_exports_a_dma_buf_under_the_layer,
    vulkan::probe_finds_dma_buf_and_sync_fd_support,
    vulkan::demo_shares_a_dma_buf,
    vulkan::demo_without_sync_samples_unfinished_frames,
    implicit_sync::acquire_waits_for_a_foreign_write_fence,
    implicit_sync::without_the_layer_the_same_client_reads_stale_content,
    implicit_sync::every_sync_mode_and_submit_entry_point_waits,
    implicit_sync::scope_all_syncs_an_application_that_records_no_transfers,
    implicit_sync::sync_off_leaves_the_application_alone,
    implicit_sync::a_read_fence_delays_a_write_acquire_but_not_a_read_acquire,
    implicit_sync::a_release_publishes_a_fence_a_peer_can_wait_on,
    implicit_sync::a_fence_that_never_signals_is_bounded_by_the_timeout,
    implicit_sync::fd_count_stays_flat_over_acquire_release_and_import_cycles,
    implicit_sync::two_processes_ping_pong_a_dma_buf_for_200_frames,
    implicit_sync::exporter_and_importer_devices_in_one_process_sync_implicitly,
    implicit_sync::bad_imports_return_the_drivers_result_and_leak_nothing,
    dynamic::every_submit_evicts_and_revalidates_and_two_processes_keep_exact_values,
    dynamic::a_budget_holds_resident_imports_within_it_at_every_point,
    dynamic::pinned_attachments_are_never_evicted,
    dynamic::content_written_while_invalidated_is_seen_after_revalidation,
    dynamic::eviction_of_a_busy_attachment_waits_and_never_corrupts,
    dynamic::a_failed_revalidation_returns_an_error_and_a_later_submit_retries,
    dynamic::an_attachment_outlives_its_exporting_process,
    dynamic::an_unchanged_buffer_acquired_unmodified_and_only_read_is_copied_once,
    dynamic::a_writer_acquiring_unmodified_copies_out_every_frame_and_in_once,
    dynamic::a_write_only_a_watched_command_shows_still_reaches_the_dma_buf,
    remap::lavapipe_sparse_binding_of_dma_buf_memory_reads_zeros,
    remap::the_probe_turns_remap_off_on_lavapipe_and_says_why,
    robustness::sync_off_keeps_dynamic_imports_pinned_and_their_content_exact,
    robustness::a_read_only_acquire_never_released_leaves_the_producers_writes_alone,
    robustness::thread_mode_blocks_vkqueuesubmit_only_when_it_also_releases,
    robustness::an_acquire_in_a_secondary_command_buffer_waits_for_a_foreign_write_fence,
    robustness::application_pnext_chains_on_submits_survive_the_layers_batches,
    robustness::host_access_maps_flushes_and_unmaps_the_dma_buf_of_a_dynamic_attachment,
    robustness::an_injected_reimport_failure_fails_one_submit_and_the_next_succeeds,
    robustness::an_injected_sync_fd_export_failure_waits_for_the_gpu_instead,
    robustness::injected_sync_file_ioctl_failures_are_logged_and_the_application_goes_on,
    robustness::an_injected_backing_failure_keeps_imports_pinned,
    robustness::two_processes_handing_over_at_submit_rely_on_the_released_fence,
    robustness::two_devices_in_one_process_handing_over_at_submit_rely_on_the_released_fence,
    robustness::a_release_behind_an_unsignalled_application_timeline_never_hangs,
    robustness::a_release_behind_an_earlier_unsignalled_wait_on_its_queue_never_hangs,
    robustness::release_then_acquire_in_one_submission_keeps_the_released_writes,
    robustness::a_first_use_that_only_releases_publishes_the_dma_bufs_content_plus_the_gpus_writes,
    images::lavapipe_supports_the_image_kinds_the_tests_share,
    images::an_acquire_of_an_image_waits_for_foreign_write_fences_on_its_dma_bufs,
    images::an_acquire_of_an_image_for_writing_waits_before_it_writes,
    images::a_layout_transition_in_an_acquire_waits_for_foreign_readers,
    images::a_release_of_an_image_fences_every_dma_buf_it_is_bound_to,
    images::an_acquire_of_a_whole_disjoint_image_waits_for_a_fence_on_any_planes_dma_buf,
    images::an_acquire_naming_one_plane_waits_only_for_that_planes_dma_buf,
    images::a_release_naming_planes_fences_only_their_dma_bufs,
    images::planes_sharing_one_dma_buf_hand_it_over_once,
    images::a_dynamic_drm_modifier_image_keeps_exact_pixels_over_200_evicted_frames,
    images::a_dynamic_disjoint_nv12_image_in_two_dma_bufs_keeps_exact_pixels_over_200_evicted_frames,
    images::a_dynamic_disjoint_nv12_image_in_one_dma_buf_copies_only_each_planes_bytes,
    // statistics
    statistics::a_stats_file_counts_a_waited_acquire_and_its_fence_wait,
    statistics::a_fence_timeout_is_a_bounded_wait_and_a_hazard_in_the_stats,
    statistics::periodic_documents_come_before_each_processs_final_one,
    statistics::a_dynamic_attachments_evictions_and_copies_are_counted_per_dma_buf,
    // the dynabuf command
    cli::ls_finds_udmabufs_a_child_holds_by_fd_and_by_mapping,
    cli::ls_shows_the_attached_device_and_fences_from_debugfs,
    cli::doctor_reports_sync_file_ioctls_udmabuf_and_drm_nodes_ok,
    cli::run_reports_the_dma_buf_and_its_acquires_and_releases,
    // hazards and CPU access
    hazards::a_use_without_acquire_is_reported_once_and_its_twin_is_not,
    hazards::a_use_without_acquire_is_seen_in_descriptor_sets_image_clears_and_after_a_release,
    hazards::a_use_without_acquire_is_seen_in_render_pass_and_dynamic_rendering_attachments,
    hazards::scope_all_reports_no_use_without_acquire,
    hazards::error_mode_reports_hazards_with_error_severity,
    hazards::a_write_never_released_is_reported_at_free_reacquire_and_device_destruction,
    hazards::an_exported_dma_buf_written_and_never_released_is_reported,
    hazards::a_mapping_held_across_a_submission_is_reported,
    hazards::a_foreign_fence_past_the_timeout_is_reported,
    hazards::an_acquire_waiting_for_its_own_queues_later_work_is_reported_and_bounded,
    cpu_sync::vkmapmemory_waits_for_a_foreign_write_fence_and_reads_what_it_wrote,
    cpu_sync::vkmapmemory_does_not_wait_for_foreign_readers,
    cpu_sync::invalidate_waits_for_a_foreign_write_fence_and_flush_does_not,
    cpu_sync::a_fence_that_never_signals_delays_vkmapmemory_only_up_to_the_timeout,
    cpu_sync::fd_count_stays_flat_over_map_and_unmap_cycles,
];

fn main() -> std::process::ExitCode {
    harness::run_all(TESTS)
}
