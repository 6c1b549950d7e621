package queue

// BulkSkipped counts the messages a bulk action left alone for one reason.
type BulkSkipped struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}
