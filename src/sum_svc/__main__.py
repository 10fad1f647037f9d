from sum_svc.main import main

main()
