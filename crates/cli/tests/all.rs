//! The escape suite: attacks on `airlock sandbox`, each run bare first (it
//! must work, so that the case can fail) and then in the sandbox (it must be
//! blocked).
//!
//! This binary is also the attack probe: `all probe ATTACK ARGS...` performs
//! one attack and exits 0 if it worked, 3 if it was blocked. Each case copies
//! it into its workspace, since the build folder is not visible inside.
//!
//! ```text
//! cargo test -p airlock-cli --test all             # every case
//! cargo test -p airlock-cli --test all -- symlink  # cases whose name contains "symlink"
//! AIRLOCK_BIN=/path/to/airlock target/debug/deps/all-*   # a copy, e.g. as another user
//! ```

// A test binary without libtest: clippy does not see it as test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod audit;
mod escape;
mod front;
mod policy;
mod probe;
mod scan;
mod support;
mod tools;

use escape::{fs, kernel, limits, net, procs, refusal};
use support::Verdict;

/// A case: runs its attacks and says how far it could check them; panics on failure.
type CaseFn = fn() -> Verdict;

const CASES: &[(&str, CaseFn)] = &[
    // Files.
    ("a_shell_rc_file_in_home_cannot_be_written", fs::a_shell_rc_file_in_home_cannot_be_written),
    ("the_hosts_tmp_cannot_be_written", fs::the_hosts_tmp_cannot_be_written),
    ("a_file_outside_the_roots_is_unreadable", fs::a_file_outside_the_roots_is_unreadable),
    ("a_denied_file_stays_unreadable_when_home_is_readable", fs::a_denied_file_stays_unreadable_when_home_is_readable),
    ("protected_paths_cannot_be_created_when_missing", fs::protected_paths_cannot_be_created_when_missing),
    ("protected_paths_cannot_be_changed_when_present", fs::protected_paths_cannot_be_changed_when_present),
    ("a_symlink_does_not_reach_a_denied_file", fs::a_symlink_does_not_reach_a_denied_file),
    ("a_hardlink_does_not_reach_a_denied_or_protected_file", fs::a_hardlink_does_not_reach_a_denied_or_protected_file),
    ("a_protected_folder_cannot_be_renamed_away", fs::a_protected_folder_cannot_be_renamed_away),
    ("a_protected_folder_cannot_be_swapped_for_a_symlink", fs::a_protected_folder_cannot_be_swapped_for_a_symlink),
    ("a_denied_file_is_unreadable_through_proc_self_root", fs::a_denied_file_is_unreadable_through_proc_self_root),
    ("an_inherited_descriptor_does_not_leak_a_denied_file", fs::an_inherited_descriptor_does_not_leak_a_denied_file),
    ("a_protected_path_that_is_a_symlink_exposes_nothing", fs::a_protected_path_that_is_a_symlink_exposes_nothing),
    ("a_placeholder_is_not_created_through_a_symlink", fs::a_placeholder_is_not_created_through_a_symlink),
    ("the_hosts_dev_shm_is_out_of_reach", fs::the_hosts_dev_shm_is_out_of_reach),
    ("a_host_terminal_is_unreachable", fs::a_host_terminal_is_unreachable),
    ("git_commondir_cannot_be_redirected", fs::git_commondir_cannot_be_redirected),
    ("a_worktrees_git_file_cannot_be_redirected", fs::a_worktrees_git_file_cannot_be_redirected),
    ("a_nested_repositorys_config_is_read_only", fs::a_nested_repositorys_config_is_read_only),
    ("a_submodules_config_and_hooks_are_read_only", fs::a_submodules_config_and_hooks_are_read_only),
    ("a_hooks_path_in_the_tree_is_read_only", fs::a_hooks_path_in_the_tree_is_read_only),
    ("git_config_included_from_the_tree_is_read_only", fs::git_config_included_from_the_tree_is_read_only),
    ("git_commit_works_in_the_sandbox", fs::git_commit_works_in_the_sandbox),
    (
        "root_only_files_in_readable_roots_are_hidden_from_root",
        fs::root_only_files_in_readable_roots_are_hidden_from_root,
    ),
    ("cargo_registry_tokens_are_not_readable", fs::cargo_registry_tokens_are_not_readable),
    ("credential_files_in_readable_roots_are_hidden", fs::credential_files_in_readable_roots_are_hidden),
    // Processes.
    ("a_host_process_environment_is_unreadable", procs::a_host_process_environment_is_unreadable),
    ("the_environment_is_an_allowlist", procs::the_environment_is_an_allowlist),
    ("a_host_process_command_line_is_invisible", procs::a_host_process_command_line_is_invisible),
    ("a_host_process_cannot_be_killed", procs::a_host_process_cannot_be_killed),
    ("a_setuid_binary_gains_nothing", procs::a_setuid_binary_gains_nothing),
    ("a_setuid_bit_cannot_be_set_in_the_workspace", procs::a_setuid_bit_cannot_be_set_in_the_workspace),
    ("a_file_cannot_be_created_setuid", procs::a_file_cannot_be_created_setuid),
    ("a_file_capability_cannot_be_set_in_the_workspace", procs::a_file_capability_cannot_be_set_in_the_workspace),
    ("a_daemon_dies_with_the_command", procs::a_daemon_dies_with_the_command),
    ("the_timeout_kills_the_whole_tree", procs::the_timeout_kills_the_whole_tree),
    // Kernel interfaces.
    ("ptrace_of_a_child_is_denied", kernel::ptrace_of_a_child_is_denied),
    ("process_vm_readv_of_a_child_is_denied", kernel::process_vm_readv_of_a_child_is_denied),
    ("a_nested_user_namespace_is_denied", kernel::a_nested_user_namespace_is_denied),
    ("a_nested_user_namespace_via_clone3_is_denied", kernel::a_nested_user_namespace_via_clone3_is_denied),
    ("tiocsti_is_denied", kernel::tiocsti_is_denied),
    ("tiocsti_with_high_bits_is_denied", kernel::tiocsti_with_high_bits_is_denied),
    ("io_uring_is_denied", kernel::io_uring_is_denied),
    ("the_i386_syscall_abi_is_denied", kernel::the_i386_syscall_abi_is_denied),
    ("the_x32_syscall_abi_is_denied", kernel::the_x32_syscall_abi_is_denied),
    // Network.
    ("tcp_to_the_hosts_loopback_is_denied", net::tcp_to_the_hosts_loopback_is_denied),
    ("udp_to_the_hosts_loopback_is_denied", net::udp_to_the_hosts_loopback_is_denied),
    ("a_dns_query_to_a_local_resolver_is_denied", net::a_dns_query_to_a_local_resolver_is_denied),
    ("ipv6_to_the_hosts_loopback_is_denied", net::ipv6_to_the_hosts_loopback_is_denied),
    ("a_host_on_another_network_is_unreachable", net::a_host_on_another_network_is_unreachable),
    ("raw_sockets_are_denied", net::raw_sockets_are_denied),
    ("packet_sockets_are_denied", net::packet_sockets_are_denied),
    ("vsock_is_denied", net::vsock_is_denied),
    ("netlink_sockets_are_denied", net::netlink_sockets_are_denied),
    ("a_unix_socket_outside_the_workspace_is_unreachable", net::a_unix_socket_outside_the_workspace_is_unreachable),
    ("an_abstract_unix_socket_is_unreachable", net::an_abstract_unix_socket_is_unreachable),
    ("a_host_socket_in_a_read_folder_is_unreachable", net::a_host_socket_in_a_read_folder_is_unreachable),
    ("a_host_socket_under_opt_is_unreachable", net::a_host_socket_under_opt_is_unreachable),
    // Resource limits.
    ("a_fork_bomb_hits_the_process_limit", limits::a_fork_bomb_hits_the_process_limit),
    ("a_memory_bomb_hits_the_memory_limit", limits::a_memory_bomb_hits_the_memory_limit),
    ("shared_anonymous_memory_hits_the_memory_limit", limits::shared_anonymous_memory_hits_the_memory_limit),
    ("a_memfd_hits_the_memory_limit", limits::a_memfd_hits_the_memory_limit),
    ("memfds_filled_by_write_hit_the_memory_limit", limits::memfds_filled_by_write_hit_the_memory_limit),
    ("sysv_shared_memory_hits_the_memory_limit", limits::sysv_shared_memory_hits_the_memory_limit),
    ("memory_is_capped_for_the_tree_or_per_process", limits::memory_is_capped_for_the_tree_or_per_process),
    ("the_private_tmpfs_mounts_fit_in_the_memory_budget", limits::the_private_tmpfs_mounts_fit_in_the_memory_budget),
    ("node_and_a_mapped_model_work_by_default", limits::node_and_a_mapped_model_work_by_default),
    ("a_big_file_hits_the_file_size_limit", limits::a_big_file_hits_the_file_size_limit),
    ("output_beyond_the_cap_is_truncated", limits::output_beyond_the_cap_is_truncated),
    // Refusal.
    ("a_missing_layer_refuses_instead_of_downgrading", refusal::a_missing_layer_refuses_instead_of_downgrading),
    ("no_user_namespaces_refuses", refusal::no_user_namespaces_refuses),
    // Policy front end.
    ("a_project_config_cannot_make_everything_writable", policy::a_project_config_cannot_make_everything_writable),
    ("a_project_config_cannot_read_a_denied_folder", policy::a_project_config_cannot_read_a_denied_folder),
    (
        "a_project_config_cannot_widen_a_managed_restriction",
        policy::a_project_config_cannot_widen_a_managed_restriction,
    ),
    ("policy_check_reports_line_and_column", policy::policy_check_reports_line_and_column),
    ("policy_show_lists_sources", policy::policy_show_lists_sources),
    (
        "managed_policy_can_forbid_running_without_the_sandbox",
        policy::managed_policy_can_forbid_running_without_the_sandbox,
    ),
    ("loader_variables_never_reach_the_command", policy::loader_variables_never_reach_the_command),
    ("the_home_folder_is_refused_as_the_workspace", policy::the_home_folder_is_refused_as_the_workspace),
    // The audit log.
    ("audit_show_filters_by_session_kind_and_time", audit::audit_show_filters_by_session_kind_and_time),
    ("audit_verify_names_an_edited_payload", audit::audit_verify_names_an_edited_payload),
    ("audit_export_verifies_without_airlock", audit::audit_export_verifies_without_airlock),
    ("audit_prove_refuses_a_damaged_tree", audit::audit_prove_refuses_a_damaged_tree),
    ("audit_verify_names_a_deleted_payload", audit::audit_verify_names_a_deleted_payload),
    ("audit_prune_leaves_a_signed_watermark", audit::audit_prune_leaves_a_signed_watermark),
    ("audit_append_cannot_add_to_a_finished_session", audit::audit_append_cannot_add_to_a_finished_session),
    ("audit_append_is_signed_before_it_returns", audit::audit_append_is_signed_before_it_returns),
    ("audit_verify_catches_a_rolled_back_database", audit::audit_verify_catches_a_rolled_back_database),
    ("audit_files_are_private", audit::audit_files_are_private),
    // Secret scanning.
    ("scan_exit_codes_follow_what_was_found", scan::scan_exit_codes_follow_what_was_found),
    (
        "scan_reports_an_unreadable_file_as_an_incomplete_scan",
        scan::scan_reports_an_unreadable_file_as_an_incomplete_scan,
    ),
    ("scan_sarif_is_valid_sarif_2_1_0", scan::scan_sarif_is_valid_sarif_2_1_0),
    // The command line itself: one error path, a closed pipe is not an error.
    ("scan_into_a_pipe_closed_early_exits_0", front::scan_into_a_pipe_closed_early_exits_0),
    ("audit_show_into_a_closed_pipe_exits_0", front::audit_show_into_a_closed_pipe_exits_0),
    ("policy_show_into_a_closed_pipe_exits_0", front::policy_show_into_a_closed_pipe_exits_0),
    ("an_error_is_one_airlock_line_and_exit_2", front::an_error_is_one_airlock_line_and_exit_2),
    ("an_error_carrying_a_status_exits_with_it", front::an_error_carrying_a_status_exits_with_it),
    ("clap_keeps_its_own_statuses", front::clap_keeps_its_own_statuses),
    // The agent's tools.
    ("run_command_runs_confined_in_the_workspace", tools::run_command_runs_confined_in_the_workspace),
    ("an_interrupt_stops_a_running_command", tools::an_interrupt_stops_a_running_command),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("probe") {
        probe::main(&args[1..]);
    }
    // Flags cargo passes (--nocapture, --quiet...) are ignored; anything else filters.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let mut failed = Vec::new();
    let (mut passed, mut partial, mut skipped) = (0, 0, 0);
    for (name, case) in CASES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(case) {
            Ok(Verdict::Passed) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Ok(Verdict::SandboxOnly(why)) => {
                partial += 1;
                println!("test {name} ... ok (sandboxed half only: {why})");
            }
            Ok(Verdict::Skipped(why)) => {
                skipped += 1;
                println!("test {name} ... skipped ({why})");
            }
            Err(_) => {
                failed.push(*name);
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("\n{passed} passed, {partial} checked in the sandbox only, {skipped} skipped, {} failed", failed.len());
    if !failed.is_empty() {
        println!("failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}
