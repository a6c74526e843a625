//go:build cgo && !redilock_system

package redilock

// By default the binding links the static library inside this module (internal/clib), so a
// program needs only `go get` to build and loads no libredilock.so at run time. The -l flags
// are the system libraries Rust's standard library needs, as printed by
//
//	cargo rustc -p redilock-ffi --release --crate-type staticlib -- --print native-static-libs

/*
#cgo CFLAGS: -I${SRCDIR}/internal/clib
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/internal/clib/libredilock_linux_amd64.a
#cgo linux,arm64 LDFLAGS: ${SRCDIR}/internal/clib/libredilock_linux_arm64.a
#cgo linux LDFLAGS: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"

import _ "github.com/redilock/redilock/bindings/go/internal/clib"
