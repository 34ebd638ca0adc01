package f2bimport

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Services maps service names to ports, as /etc/services lists them
// (name and aliases, per protocol).
type Services map[string]uint16

// wellKnown stands in when /etc/services is missing (a minimal image).
var wellKnown = Services{
	"ssh/tcp": 22, "http/tcp": 80, "https/tcp": 443, "smtp/tcp": 25, "submission/tcp": 587,
	"submissions/tcp": 465, "smtps/tcp": 465, "imap/tcp": 143, "imap2/tcp": 143, "imaps/tcp": 993,
	"pop3/tcp": 110, "pop3s/tcp": 995, "ftp/tcp": 21, "ftp-data/tcp": 20, "ftps/tcp": 990,
	"domain/tcp": 53, "domain/udp": 53, "sieve/tcp": 4190, "mysql/tcp": 3306, "postgresql/tcp": 5432,
}

// ReadServices reads root/etc/services ("" root: /).
func ReadServices(root string) Services {
	data, err := os.ReadFile(filepath.Join(root, "/etc/services"))
	if err != nil {
		return wellKnown
	}
	s := Services{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(f[1], "/")
		n, err := strconv.ParseUint(num, 10, 16)
		if !ok || err != nil || n == 0 {
			continue
		}
		for _, name := range append([]string{f[0]}, f[2:]...) {
			if _, dup := s[name+"/"+proto]; !dup {
				s[name+"/"+proto] = uint16(n)
			}
		}
	}
	for k, v := range wellKnown {
		if _, ok := s[k]; !ok {
			s[k] = v
		}
	}
	return s
}

// Port resolves a port number or service name for proto.
func (s Services) Port(name, proto string) (uint16, bool) {
	if n, err := strconv.ParseUint(name, 10, 16); err == nil {
		return uint16(n), n > 0
	}
	p, ok := s[strings.ToLower(name)+"/"+proto]
	return p, ok
}
