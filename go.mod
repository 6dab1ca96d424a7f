module github.com/camftpd/camftpd

go 1.26.0
