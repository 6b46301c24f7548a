package appvpkg

import "os"

// linuxMetadataStub is replaced when FilesystemMetadata support lands.
type linuxMetadataStub struct{}

func (p *Package) linuxMetadata() (*linuxMetadataStub, error) { return nil, nil }

func applyLinuxMetadata(root *os.Root, meta *linuxMetadataStub) error { return nil }
