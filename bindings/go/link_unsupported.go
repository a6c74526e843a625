//go:build cgo && !redilock_system && !(linux && (amd64 || arm64))

package redilock

// The module carries a static library for linux/amd64 and linux/arm64 only. Elsewhere this
// stops the build, before the linker fails on missing symbols, with an identifier naming the
// way out: a libredilock installed on the system.
var _ = no_prebuilt_libredilock_for_this_platform__build_with_tags_redilock_system
