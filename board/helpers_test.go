package board

import "encoding/binary"

// buildLinkMsg makes one rtnetlink link message as the kernel sends it.
func buildLinkMsg(typ uint16, index int32, flags uint32, name string) []byte {
	ne := binary.NativeEndian
	attr := make([]byte, 4+len(name)+1)
	ne.PutUint16(attr[0:], uint16(len(attr)))
	ne.PutUint16(attr[2:], 3) // IFLA_IFNAME
	copy(attr[4:], name)
	for len(attr)%4 != 0 {
		attr = append(attr, 0)
	}
	body := make([]byte, 16)
	ne.PutUint32(body[4:], uint32(index))
	ne.PutUint32(body[8:], flags)
	body = append(body, attr...)
	hdr := make([]byte, 16)
	ne.PutUint32(hdr[0:], uint32(16+len(body)))
	ne.PutUint16(hdr[4:], typ)
	return append(hdr, body...)
}
