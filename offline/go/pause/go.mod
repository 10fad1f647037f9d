module distsum.local/tools/pause

go 1.24
