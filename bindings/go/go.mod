module github.com/redilock/redilock/bindings/go

go 1.24
