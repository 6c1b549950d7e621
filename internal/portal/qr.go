package portal

import (
	"fmt"
	"html/template"
	"strings"

	"rsc.io/qr"
)

// qrSVG renders text as a QR code in an inline SVG (no script, no style: the CSP allows it), one path of
// unit squares with a four-module quiet zone, or "" when text does not fit a QR code.
func qrSVG(text, label string) template.HTML {
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return ""
	}
	n := c.Size + 8
	var d strings.Builder
	for y := range c.Size {
		for x := range c.Size {
			if c.Black(x, y) {
				fmt.Fprintf(&d, "M%d %dh1v1h-1z", x+4, y+4)
			}
		}
	}
	// Every part is a number or escaped: the SVG is safe to print as it is.
	return template.HTML(fmt.Sprintf(`<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" shape-rendering="crispEdges">`+
		`<rect width="%d" height="%d" fill="#fff"/><path d="%s" fill="#000"/></svg>`,
		n, n, n*5, n*5, template.HTMLEscapeString(label), n, n, d.String()))
}

func init() {
	area(nil, map[string]string{
		"QR code of the secret, for your authenticator app":                                                       "Code QR du secret, pour votre application d'authentification",
		"Scan this code with your authenticator app, or add the secret below to it, then enter its current code:": "Scannez ce code avec votre application d'authentification, ou ajoutez-y le secret ci-dessous, puis saisissez son code actuel :",
	}, nil)
}
