package transfer

import "slices"

// settle decides, from what the server shows, how the rename announced in
// Job.Intent ended (see Intent), with the SIZE of its temporary and final
// names in one round trip. done: the rename happened; the upload is over.
func (u *upload) settle(s *session) (done bool, err error) {
	in := *u.job.Intent
	log := u.c.log.With("temp", in.Temp, "final", in.Final, "size", in.Size)
	if !slices.Contains(u.temps, in.Temp) || in.Size != u.size || in.Final == "" || CheckPath(in.Final) != nil {
		u.settled = true
		log.Info("rename intent ignored: not this upload's (other temporary name, size or path)", "local_size", u.size)
		return false, nil
	}
	rs, err := s.pipeline("SIZE "+in.Temp, "SIZE "+in.Final)
	if err != nil {
		return false, classify("SIZE "+in.Temp, err)
	}
	u.settled = true
	tn, tok, terr := sizeReply(in.Temp, rs[0].code, rs[0].msg)
	fn, fok, ferr := sizeReply(in.Final, rs[1].code, rs[1].msg)
	switch {
	case terr != nil || ferr != nil:
		log.Info("rename intent ignored: the server's SIZE replies cannot tell", "temp_reply", rs[0].code, "final_reply", rs[1].code)
	case !tok && fok && fn == in.Size:
		u.res.Remote, u.res.Existing, u.res.Verified = in.Final, true, "size"
		log.Info("the rename of an earlier attempt had happened: not sent again")
		return true, nil
	case tok && tn == in.Size:
		u.temp, u.intentTemp, u.intentFinal = in.Temp, true, in.Final
		log.Info("the rename of an earlier attempt had not happened: renaming its complete temporary file")
	default:
		log.Info("rename intent ignored: neither its temporary file nor its final name is complete",
			"temp_exists", tok, "temp_size", tn, "final_exists", fok, "final_size", fn)
	}
	return false, nil
}
