module github.com/appv/appv

go 1.26

require (
	github.com/beevik/etree v1.8.1
	github.com/klauspost/compress v1.20.3
)
