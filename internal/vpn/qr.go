package vpn

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRText renders data as a QR code for a terminal, two modules per
// character cell with the half-block characters, dark on light with the
// quiet zone the standard asks for, so phone cameras read it from a dark
// terminal too.
func QRText(data string) (string, error) {
	q, err := qrcode.New(data, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("make QR code: %w", err)
	}
	bm := q.Bitmap() // includes a 4-module quiet zone
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			top := bm[y][x]
			bottom := y+1 < len(bm) && bm[y+1][x]
			// Light modules are drawn (the terminal's background is the
			// dark), so a set module is a space.
			switch {
			case !top && !bottom:
				b.WriteRune('█')
			case !top:
				b.WriteRune('▀')
			case !bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// QRPNG renders data as a PNG QR code of size pixels.
func QRPNG(data string, size int) ([]byte, error) {
	png, err := qrcode.Encode(data, qrcode.Medium, size)
	if err != nil {
		return nil, fmt.Errorf("make QR code: %w", err)
	}
	return png, nil
}
