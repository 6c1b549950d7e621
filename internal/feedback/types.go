package feedback

import "time"

// Rate is the complaints about one customer's mail, or one outbound IP's, over a window, against
// the recipients delivered there; Rate is complaints / delivered (complaints / complaints when more
// complaints than deliveries are counted).
type Rate struct {
	Key        string  `json:"key"`
	Complaints int     `json:"complaints"`
	Delivered  int     `json:"delivered"`
	Rate       float64 `json:"rate"`
}

// Rates is the answer of GET /complaints: the rates since Since (now less Window), per customer
// and per outbound IP, highest first. A customer token gets its own customer only and no IPs.
type Rates struct {
	Window    string    `json:"window"`
	Since     time.Time `json:"since"`
	Customers []Rate    `json:"customers"`
	IPs       []Rate    `json:"ips"`
}
