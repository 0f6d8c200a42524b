module skewcheck/bench/fasttarget

go 1.21
