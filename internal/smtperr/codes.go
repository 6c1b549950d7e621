package smtperr

// Enhanced status codes (RFC 3463, the IANA registry's names) that Easymail sends or maps replies to. The
// first digit is the class: 2 success, 4 persistent transient failure, 5 permanent failure.
var (
	// TempSystem, 4.3.0: other or undefined mail system status (our own local error).
	TempSystem = [3]int{4, 3, 0}
	// TempNotAccepting, 4.3.2: system not accepting network messages (shutting down).
	TempNotAccepting = [3]int{4, 3, 2}
	// TempNetwork, 4.4.0: other or undefined network or routing status.
	TempNetwork = [3]int{4, 4, 0}
	// TempNoAnswer, 4.4.1: no answer from host.
	TempNoAnswer = [3]int{4, 4, 1}
	// TempBadConnection, 4.4.2: bad connection (lost, or timed out).
	TempBadConnection = [3]int{4, 4, 2}
	// TempDirectory, 4.4.3: directory server failure (DNS).
	TempDirectory = [3]int{4, 4, 3}
	// TempProtocol, 4.5.0: other or undefined protocol status.
	TempProtocol = [3]int{4, 5, 0}
	// TempTooManyRecipients, 4.5.3: too many recipients.
	TempTooManyRecipients = [3]int{4, 5, 3}
	// TempSecurity, 4.7.0: other or undefined security status (rate limits, throttling).
	TempSecurity = [3]int{4, 7, 0}
	// TempPolicy, 4.7.1: delivery not authorized for now.
	TempPolicy = [3]int{4, 7, 1}
	// TempCrypto, 4.7.5: cryptographic failure (TLS required and not achieved).
	TempCrypto = [3]int{4, 7, 5}

	// PermBadMailbox, 5.1.1: bad destination mailbox address.
	PermBadMailbox = [3]int{5, 1, 1}
	// PermBadSystem, 5.1.2: bad destination system address.
	PermBadSystem = [3]int{5, 1, 2}
	// PermBadSyntax, 5.1.3: bad destination mailbox address syntax.
	PermBadSyntax = [3]int{5, 1, 3}
	// PermBadSender, 5.1.7: bad sender's mailbox address syntax.
	PermBadSender = [3]int{5, 1, 7}
	// PermMailSystem, 5.3.0: other or undefined mail system status.
	PermMailSystem = [3]int{5, 3, 0}
	// PermTooBig, 5.3.4: message too big for system.
	PermTooBig = [3]int{5, 3, 4}
	// PermLoop, 5.4.6: routing loop detected.
	PermLoop = [3]int{5, 4, 6}
	// PermBadCommand, 5.5.1: invalid command (or out of sequence).
	PermBadCommand = [3]int{5, 5, 1}
	// PermBadArguments, 5.5.4: invalid command arguments.
	PermBadArguments = [3]int{5, 5, 4}
	// PermMedia, 5.6.0: other or undefined media error (malformed content).
	PermMedia = [3]int{5, 6, 0}
	// PermNonASCII, 5.6.7: non-ASCII addresses not permitted.
	PermNonASCII = [3]int{5, 6, 7}
	// PermPolicy, 5.7.1: delivery not authorized, message refused.
	PermPolicy = [3]int{5, 7, 1}
)
