package tlsrpt

import "time"

// SentReport is one TLS-RPT report (RFC 8460) the relay sent, or gave up on, for a day and policy domain
// (GET /tls-reports).
type SentReport struct {
	// Day is the UTC day reported (YYYY-MM-DD); Domain the policy domain; ReportID the report's report-id.
	Day      string `json:"day"`
	Domain   string `json:"domain"`
	ReportID string `json:"report_id"`
	// RUA are the report addresses of the domain's _smtp._tls record, comma-separated ("" when it has none).
	RUA string `json:"rua"`
	// Outcome is, per address, "sent" or the error ("mailto:a@example.com: sent; https://...: answered 500"),
	// or "no report address: ..." for a domain without a usable record.
	Outcome string    `json:"outcome"`
	SentAt  time.Time `json:"sent_at"`
}
