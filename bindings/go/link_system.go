//go:build cgo && redilock_system

package redilock

// With -tags redilock_system the binding links the libredilock installed on the system (a
// distribution's package, or `make install`) as a shared library, found by pkg-config.

// #cgo pkg-config: redilock
import "C"
