package serverdb

import (
	"strconv"
	"strings"
)

// parseVersion parses an AppX version: four dot-separated decimal numbers,
// each 0-65535 ("1.2.0.0").
func parseVersion(s string) ([4]int64, error) {
	var v [4]int64
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return v, invalidf("version %q is not four dot-separated numbers", s)
	}
	for i, p := range parts {
		if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
			return v, invalidf("version %q is not four dot-separated numbers", s)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n > 65535 {
			return v, invalidf("version %q has a component above 65535", s)
		}
		v[i] = int64(n)
	}
	return v, nil
}
