package check

import (
	"math/bits"
	"strconv"
)

// FormatBytes renders a size in binary units with one decimal where it
// matters: "64 MiB", "1.5 GiB". It uses integer arithmetic only: float
// formatting costs more than the rest of a start-up check.
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i, div := 0, uint64(unit)
	for n/div >= unit && i < len(units)-1 {
		div *= unit
		i++
	}
	whole, rest := n/div, n%div
	// tenths = round(rest*10/div), in 128 bits so that it cannot overflow.
	hi, lo := bits.Mul64(rest, 10)
	lo, carry := bits.Add64(lo, div/2, 0)
	tenths, _ := bits.Div64(hi+carry, lo, div)
	if tenths == 10 {
		whole, tenths = whole+1, 0
	}
	if whole == unit && i < len(units)-1 {
		whole, i = 1, i+1
	}
	s := strconv.FormatUint(whole, 10)
	if tenths != 0 {
		s += "." + strconv.FormatUint(tenths, 10)
	}
	return s + " " + units[i]
}
