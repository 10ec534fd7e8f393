module ads.local/kind/pause

go 1.24
