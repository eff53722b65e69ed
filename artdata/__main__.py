from artdata.cli import main

main()
