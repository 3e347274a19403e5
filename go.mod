module github.com/nvidia-nemo/nss-entrypoint

go 1.26.8

require github.com/NVIDIA/go-nvml v0.13.4-1

require (
	github.com/fatih/color v1.19.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
