from azs_syslog.cli import main

main()
