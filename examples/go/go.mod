module github.com/redilock/redilock/examples/go

go 1.24

require github.com/redilock/redilock/bindings/go v0.0.0

replace github.com/redilock/redilock/bindings/go => ../../bindings/go
