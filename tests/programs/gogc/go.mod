module gogc

go 1.19
