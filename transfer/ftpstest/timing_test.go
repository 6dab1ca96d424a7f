package ftpstest

import (
	"time"

	"github.com/camftpd/camftpd/internal/testtime"
)

// within stretches a "not hung" bound of these tests: 2 times under -race,
// 4 times emulated, 8 times under both (internal/testtime).
func within(d time.Duration) time.Duration { return testtime.Within(d) }
