module skewcheck/gotargets

go 1.19
