package vpn

import (
	"errors"
	"fmt"
	"strconv"
)

// ValidInterface checks a network interface name the way the kernel does
// (dev_valid_name): 1 to 15 bytes, no '/', ':' or white space, not . or ..
// A trailing '*' is allowed as an nftables wildcard ("wg*").
func ValidInterface(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return fmt.Errorf("invalid interface name %q: expected 1 to 15 characters", name)
	}
	for i, r := range name {
		if r == '/' || r == ':' || r <= ' ' || r > '~' || r == '"' || (r == '*' && i != len(name)-1) {
			return fmt.Errorf("invalid interface name %q: character %s not allowed", name, strconv.QuoteRune(r))
		}
	}
	return nil
}

func indexPath(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

func joinErrs(errs []error) error { return errors.Join(errs...) }
