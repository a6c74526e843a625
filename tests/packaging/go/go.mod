// A program in a module of its own that requires the Go binding, as a user's would. The
// check script copies it out of the repository and points it at the binding.
module example.com/redilock-consumer

go 1.24

require github.com/redilock/redilock/bindings/go v0.0.0
