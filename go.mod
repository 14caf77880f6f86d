module github.com/regcred/regcred

go 1.26.8

require (
	github.com/distribution/reference v0.6.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/opencontainers/go-digest v1.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
